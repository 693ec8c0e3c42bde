//! Word lists of the checker (stop words, negation cues, number and scale words, abbreviations),
//! kept apart from the text code because they are long and change for different reasons.

/// English function words: they carry no evidence of support. [`is_stopword`] is this list
/// compiled into a `match`; a test keeps the two equal.
#[cfg(test)]
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "actually",
    "after",
    "again",
    "against",
    "all",
    "also",
    "although",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "e",
    "each",
    "eg",
    "etc",
    "even",
    "few",
    "for",
    "from",
    "further",
    "g",
    "get",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "hello",
    "her",
    "here",
    "hers",
    "herself",
    "hi",
    "him",
    "himself",
    "his",
    "how",
    "however",
    "i",
    "ie",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "know",
    "let",
    "like",
    "ll",
    "lot",
    "lots",
    "m",
    "many",
    "may",
    "me",
    "mean",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "of",
    "off",
    "oh",
    "ok",
    "okay",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "please",
    "pretty",
    "quite",
    "re",
    "really",
    "s",
    "said",
    "same",
    "say",
    "says",
    "shall",
    "she",
    "should",
    "since",
    "so",
    "some",
    "something",
    "still",
    "such",
    "sure",
    "t",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "though",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "ve",
    "very",
    "via",
    "was",
    "way",
    "we",
    "well",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "would",
    "yeah",
    "yes",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Negation cues; "n't" comes from the tokenizer's contraction split.
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "n't", "cannot", "none", "nobody", "nothing", "neither", "nor", "without", "nowhere",
    "unable", "lack", "lacks", "lacked",
];

pub(crate) fn is_stopword(lower: &str) -> bool {
    // A match on length first: this runs for every evidence word.
    match lower.len() {
        1 => !lower.as_bytes()[0].is_ascii_digit(),
        2 => matches!(
            lower,
            "am" | "an"
                | "as"
                | "at"
                | "be"
                | "by"
                | "do"
                | "eg"
                | "he"
                | "hi"
                | "ie"
                | "if"
                | "in"
                | "is"
                | "it"
                | "ll"
                | "me"
                | "my"
                | "of"
                | "oh"
                | "ok"
                | "on"
                | "or"
                | "re"
                | "so"
                | "to"
                | "up"
                | "us"
                | "ve"
                | "we"
        ),
        3 => matches!(
            lower,
            "all"
                | "and"
                | "any"
                | "are"
                | "but"
                | "can"
                | "did"
                | "etc"
                | "few"
                | "for"
                | "get"
                | "got"
                | "had"
                | "has"
                | "her"
                | "him"
                | "his"
                | "how"
                | "its"
                | "let"
                | "lot"
                | "may"
                | "off"
                | "one"
                | "our"
                | "out"
                | "own"
                | "say"
                | "she"
                | "the"
                | "too"
                | "via"
                | "was"
                | "way"
                | "who"
                | "why"
                | "yes"
                | "yet"
                | "you"
        ),
        4 => matches!(
            lower,
            "also"
                | "been"
                | "both"
                | "does"
                | "down"
                | "each"
                | "even"
                | "from"
                | "have"
                | "here"
                | "hers"
                | "into"
                | "just"
                | "know"
                | "like"
                | "lots"
                | "many"
                | "mean"
                | "more"
                | "most"
                | "much"
                | "must"
                | "okay"
                | "once"
                | "only"
                | "ours"
                | "over"
                | "said"
                | "same"
                | "says"
                | "some"
                | "such"
                | "sure"
                | "than"
                | "that"
                | "them"
                | "then"
                | "they"
                | "this"
                | "upon"
                | "very"
                | "well"
                | "were"
                | "what"
                | "when"
                | "whom"
                | "will"
                | "with"
                | "yeah"
                | "your"
        ),
        5 => matches!(
            lower,
            "about"
                | "above"
                | "after"
                | "again"
                | "being"
                | "below"
                | "could"
                | "doing"
                | "hello"
                | "might"
                | "other"
                | "quite"
                | "shall"
                | "since"
                | "still"
                | "thank"
                | "their"
                | "there"
                | "these"
                | "thing"
                | "think"
                | "those"
                | "under"
                | "until"
                | "where"
                | "which"
                | "while"
                | "would"
                | "yours"
        ),
        6 => matches!(
            lower,
            "before"
                | "during"
                | "having"
                | "itself"
                | "myself"
                | "please"
                | "pretty"
                | "really"
                | "should"
                | "thanks"
                | "theirs"
                | "things"
                | "though"
                | "within"
        ),
        7 => matches!(
            lower,
            "against" | "because" | "between" | "further" | "herself" | "himself" | "however" | "through"
        ),
        8 => matches!(lower, "actually" | "although" | "anything" | "yourself"),
        9 => matches!(lower, "ourselves" | "something"),
        10 => matches!(lower, "themselves" | "yourselves"),
        _ => false,
    }
}

pub(crate) fn is_negation(lower: &str) -> bool {
    lower.len() <= 8 && (NEGATIONS.contains(&lower) || lower == "n’t")
}

/// Value of a number word ("thirty" = 30); "one" is left out on purpose: it is far more often
/// a pronoun ("one of the") than a quantity.
pub(crate) fn number_word(lower: &str) -> Option<f64> {
    Some(match lower {
        "zero" => 0.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "thirteen" => 13.0,
        "fourteen" => 14.0,
        "fifteen" => 15.0,
        "sixteen" => 16.0,
        "seventeen" => 17.0,
        "eighteen" => 18.0,
        "nineteen" => 19.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "seventy" => 70.0,
        "eighty" => 80.0,
        "ninety" => 90.0,
        "dozen" => 12.0,
        _ => return None,
    })
}

pub(crate) fn scale_word(lower: &str) -> Option<f64> {
    Some(match lower {
        "hundred" => 100.0,
        "thousand" => 1e3,
        "million" => 1e6,
        "billion" => 1e9,
        "trillion" => 1e12,
        _ => return None,
    })
}

pub(crate) const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co", "corp", "no", "fig", "approx",
    "dept", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen", "col",
    "lt", "sgt", "gov", "rev", "mt", "ft", "vol",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stopword_match_covers_the_list() {
        assert!(STOPWORDS.iter().all(|w| is_stopword(w)));
        assert!(!is_stopword("fee") && !is_stopword("refund") && !is_stopword("7"));
    }
}
