//! Folding of Cyrillic and Greek look-alike letters to Latin, for detection only.
//!
//! Folding applies to a word only when the word mixes Latin with look-alikes, or consists
//! solely of look-alikes, so genuine Russian or Greek words (which almost always contain
//! letters with no Latin twin) are left as they are.

/// The Latin twin of a look-alike letter, if any.
fn latin_twin(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic lower case
        'а' => 'a',
        'в' => 'b',
        'е' => 'e',
        'ё' => 'e',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'і' => 'i',
        'ї' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'һ' => 'h',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ո' => 'n',
        'ս' => 'u',
        'ɡ' => 'g',
        'ı' => 'i',
        'ʟ' => 'l',
        'ɴ' => 'n',
        // Cyrillic upper case
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'У' => 'Y',
        'Х' => 'X',
        'І' => 'I',
        'Ј' => 'J',
        'Ѕ' => 'S',
        'Ԁ' => 'D',
        'Һ' => 'H',
        'Ԛ' => 'Q',
        'Ԝ' => 'W',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'γ' => 'y',
        'ω' => 'w',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        _ => return None,
    })
}

fn fold_word(word: &str, out: &mut String) -> usize {
    let mut latin = false;
    let mut twins = 0usize;
    let mut foreign = false;
    for c in word.chars() {
        if c.is_ascii_alphabetic() {
            latin = true;
        } else if latin_twin(c).is_some() {
            twins += 1;
        } else if c.is_alphabetic() {
            foreign = true;
        }
    }
    let fold = twins > 0 && (latin || !foreign);
    if !fold {
        out.push_str(word);
        return 0;
    }
    for c in word.chars() {
        out.push(latin_twin(c).unwrap_or(c));
    }
    twins
}

/// Fold look-alike letters to Latin; returns the folded text and how many letters changed.
pub fn fold_homoglyphs(text: &str) -> (String, usize) {
    // Every look-alike lies in U+0131..U+058F, whose UTF-8 lead bytes are 0xC4..=0xD6: a
    // text without one has nothing to fold (a byte scan, not a walk over characters).
    if !text.bytes().any(|b| (0xC4..=0xD6).contains(&b)) {
        return (text.to_owned(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if !c.is_alphanumeric() {
            if start < i {
                changed += fold_word(&text[start..i], &mut out);
            }
            out.push(c);
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        changed += fold_word(&text[start..], &mut out);
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_script_word_is_folded() {
        assert_eq!(fold_homoglyphs("ignоre").0, "ignore");
        assert_eq!(fold_homoglyphs("Ѕystem").0, "System");
    }

    #[test]
    fn every_lookalike_is_behind_the_lead_byte_scan() {
        for c in (0u32..0x11_0000).filter_map(char::from_u32).filter(|c| latin_twin(*c).is_some()) {
            let lead = c.to_string().as_bytes()[0];
            assert!((0xC4..=0xD6).contains(&lead), "{c:?} has lead byte {lead:#x}");
        }
    }

    #[test]
    fn genuine_russian_is_kept() {
        let (s, n) = fold_homoglyphs("привет мир");
        assert_eq!(s, "привет мир");
        assert_eq!(n, 0);
    }
}
