//! The heuristic rule table: regular expressions over the detection form of the text
//! (NFKC, homoglyphs folded, lower case), each with a family and a weight in (0, 1).
//!
//! Weights are evidence strengths: a family's score is the noisy-OR of its fired rules, so
//! one strong rule or several weak ones are needed. Strong rules need an instruction-like
//! object ("ignore ... previous instructions"), so "ignore a warning" does not fire.

use serde::Serialize;

/// The attack family a rule belongs to (one reason code each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Override,
    Roleplay,
    Delimiter,
    Extraction,
    Indirect,
}

impl Family {
    pub const ALL: [Family; 5] = [Self::Override, Self::Roleplay, Self::Delimiter, Self::Extraction, Self::Indirect];
}

/// One heuristic rule.
pub struct Rule {
    pub id: &'static str,
    pub family: Family,
    pub weight: f32,
    pub pattern: &'static str,
    /// Fires only on retrieved documents: in a user's own request the same words are an
    /// ordinary request ("translate your answer into Spanish", "write a poem").
    pub document_only: bool,
}

const fn r(id: &'static str, family: Family, weight: f32, pattern: &'static str) -> Rule {
    Rule { id, family, weight, pattern, document_only: false }
}

/// A rule for text a document addresses to the model reading it (indirect injection only).
const fn d(id: &'static str, weight: f32, pattern: &'static str) -> Rule {
    Rule { id, family: Family::Indirect, weight, pattern, document_only: true }
}

use Family::{Delimiter as D, Extraction as X, Indirect as I, Override as O, Roleplay as R};

/// Shared fragments are spelled out in each pattern: the table is read more than edited.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    // ---- instruction override (EN)
    r("override.ignore_previous", O, 0.9, r"\b(ignore|ignoring|disregard|forget|skip|override|overrule|bypass|neglect|abandon|discard|set aside|put aside|leave behind|drop)\b[^.!?\n]{0,40}?\b(previous|prior|above|earlier|preceding|foregoing|former|initial|original|old|all|any|every|your|those|these)\b[^.!?\n]{0,30}?\b(instructions?|prompts?|rules|directions?|directives?|guidelines|commands?|context|constraints|programming|orders|tasks?|information|conversation|messages|input|policies|training|thoughts)\b"),
    r("override.forget_everything", O, 0.85, r"\b(forget|ignore|disregard)\s+(about\s+)?(everything|all( of)?( that| this| the above)?|what (i|you|we) (said|told|wrote|discussed))\b"),
    r("override.above_irrelevant", O, 0.8, r"\b(the above|everything above|all (the )?(previous|prior|earlier) (information|instructions|text)|all (the )?information you (have )?received)\b[^.!?\n]{0,40}\b(irrelevant|not important|no longer (valid|apply|applies)|cancel+ed|void|wrong|fake|a test|not (quite )?(great|good))"),
    r("override.new_task", O, 0.6, r"\b(now|from now on|next)\b[^.!?\n]{0,40}\b(new|different|next|real|actual|further)\s+(tasks?|instructions?|assignments?|roles?|goal|job|mission)\b|\bnew (tasks|instructions) (follow|are coming|await)"),
    r("override.praise_pivot", O, 0.55, r"\b(well done|great job|good job|excellent|fantastic|perfect|very good|super|that is enough|that's enough)\b[^\n]{0,30}\b(now|but)\b[^.!?\n]{0,40}\b(tasks?|help me|follow|write|forget|ignore)\b"),
    r("override.stop_marker", O, 0.5, r"(^|[\n.!?]\s*)(stop|halt|attention|important|urgent)\s*[-:!]+\s*(stop|write|say|print|ignore|answer|now)\b"),
    r("override.instead", O, 0.4, r"\b(instead|rather)\b[^.!?\n]{0,25}\b(say|write|print|output|respond|answer|tell)\b"),
    r("override.repeat_after_me", O, 0.5, r"\b(repeat after me|say exactly|print exactly|respond only with|reply only with|answer only with|output only)\b"),
    r("override.do_not_follow", O, 0.7, r"\b(do not|don't|stop|no longer)\s+(follow|obey|adhere to|listen to)\b[^.!?\n]{0,30}\b(instructions?|rules|guidelines|system|prompt|developers?|programming)\b"),
    r("override.change_instructions", O, 0.8, r"\b(change|update|replace|rewrite|modify)\s+(your|the)\s+(instructions|rules|prompt|programming)\b|\byour (new )?(instructions|task|job|rules) (are|is) now\b|(^|\n)\s*(new )?instructions?\s*:"),
    r("override.despite_context", O, 0.7, r"\b(despite|regardless of|irrespective of) what (you'?ve|you have|you were|you've been) (been )?(told|instructed|taught)|\bdisregarding (the|your|all|any) \w+|\b(not|instead of) (by|from|using) the (articles|documents|context|sources|provided)\b|\bdo not (look (in|at)|use|read|consider) the (documents?|articles?|context|sources)\b"),
    r("override.do_not_answer", O, 0.6, r"\bdo not answer (this|the|my) question\b|\bdon'?t answer (this|the) question\b|\b(just|only|simply) output\b"),
    r("override.previous_instructions", O, 0.5, r"\b(previous|prior|above|preceding|earlier|original) (instructions|prompts?|directives|commands)\b"),
    r("override.forced_opinion", O, 0.45, r"\b(say|state|write|include|claim|print|admit|tell me) (that )?(you )?(hate|love|despise)\b|\bstate that\b|\b(haha )?pwned\b|\bexploit(ing)? (ai|llm|language model)s?\b"),
    // ---- instruction override (DE, FR, ES, IT, PT, NL)
    r("override.de_ignore", O, 0.9, r"\b(ignorier\w*|vergiss|vergessen sie|vergesst|missacht\w*|verwirf|verwerfen sie)\b[^.!?\n]{0,40}\b(alle\w*|vorherig\w*|bisherig\w*|obig\w*|vorangegangen\w*|früher\w*|davor|zuvor|oben|anweisungen|informationen|aufgaben|regeln)\b"),
    r("override.de_reverse", O, 0.85, r"\b(obig\w*|vorherig\w*|bisherig\w*|vorangegangen\w*|vorigen)\b[^.!?\n]{0,50}\b(ignorier\w*|vergess\w*|vergiss|irrelevant|unwichtig|hinter sich|nicht (mehr )?(wichtig|gültig)|nicht ganz großartig)"),
    r("override.de_new_task", O, 0.6, r"\b(neue|weitere|nächste) (aufgaben?|anweisungen?)\b|\bvergiss alles\b|\b(achtung|stopp?)\s*[-:!]+"),
    r("override.fr_ignore", O, 0.9, r"\b(ignore[zr]?|oublie[zr]?)\b[^.!?\n]{0,30}(\b(toutes les|les instructions|consignes|ce qui précède|tout ce qui)\b|\bprécédent)"),
    r("override.es_ignore", O, 0.9, r"\b(ignora|olvida|olvide|olvidad)\b[^.!?\n]{0,30}\b(todas las|las instrucciones|anteriores|lo anterior|todo lo)\b"),
    r("override.it_ignore", O, 0.9, r"\b(ignora|dimentica)\b[^.!?\n]{0,30}\b(tutte le|le istruzioni|precedenti|tutto quello)\b"),
    r("override.pt_nl_ignore", O, 0.9, r"\b(ignore|esqueca|negeer|vergeet)\b[^.!?\n]{0,30}\b(todas as|instruções|anteriores|alle vorige|vorige|instructies)\b"),
    r("override.de_previous", O, 0.8, r"\b(vorherig\w*|bisherig\w*|obig\w*|vorangegangen\w*) (instruktionen|anweisungen|befehle|vorgaben)\b|\babweichend (zu|von) (den )?(vorherig|bisherig)"),
    r("override.other_langs", O, 0.85, r"\b(zaboravi|zapomnij|zignoruj|unut|ignoriši|ignoriraj)\b|забуд\w*|игнорир\w*|\b(olvid[ae]r?|olvida) todo\b|\btienes que olvidar\b|\bnon seguire\b"),
    // ---- role-play, DAN, developer mode
    r("roleplay.dan", R, 0.9, r"\bdo anything now\b|\b(you are|you're|act as|pretend to be|become|called|named) (dan|dude|stan|aim|ucar|dev mode)\b|\bdan mode\b"),
    r("roleplay.dan_word", R, 0.3, r"\bdan\b"),
    r("roleplay.developer_mode", R, 0.45, r"\b(developer|dev|debug|god|admin|sudo|maintenance|jailbreak|unrestricted|evil) mode\b"),
    r("roleplay.developer_mode_on", R, 0.9, r"\b(developer|dev|debug|god|jailbreak|unrestricted|evil) mode\b[^.!?\n]{0,30}\b(enabled|activated|on\s*[.!:,;\n)]|output|response|simulat\w*)|\b(enable|activate|enter|simulate|switch to)\b[^.!?\n]{0,15}\b(developer|god|jailbreak|unrestricted|evil) mode\b"),
    r("roleplay.jailbreak_word", R, 0.4, r"\bjail ?br(ea|o)k(en|ed|ing)?\b"),
    r("roleplay.no_restrictions", R, 0.5, r"\b(without|no|free (of|from)|freed from|not bound by|unbound by|beyond|break(s|ing)? free (of|from)|not (have to )?(abide|adhere|comply) (by|to|with)|ignore|ignores|disregard)\b[^.!?\n]{0,25}\b(restrictions?|restrained|restraints|filters?|filtering|censorship|censored|limitations|limits|rules|guidelines|ethics|ethical|morals?|moral\w*|content polic(y|ies)|safeguards|boundaries|confines|programming)\b"),
    r("roleplay.never_refuse", R, 0.45, r"\b(never|not|don'?t|do not|cannot|can'?t|won'?t|will not|must not|shall not)\s+(\w+\s+){0,2}(refuse|decline|deny|reject|say no|say (that )?(you|it) (can'?t|cannot))\b"),
    r("roleplay.stay_in_character", R, 0.45, r"\b(stay|remain|stays|keep|staying)\s+in\s+character\b|\bbreak(s|ing)?\s+(of\s+)?character\b|\bout of character\b"),
    r("roleplay.vendor_names", R, 0.25, r"\b(openai|chatgpt|chat gpt|gpt-?[345](\.5)?|anthropic|claude|bard|gemini|llama)\b"),
    r("roleplay.content_policy", R, 0.35, r"\bcontent polic(y|ies)\b|\busage polic(y|ies)\b|\bsafety (guidelines|filters?|protocols)\b"),
    r("roleplay.amoral", R, 0.2, r"\b(unfiltered|uncensored|amoral|unethical|immoral|nsfw|no morals|illegal|explicit|offensive|harmful)\b"),
    r("roleplay.persona_switch", R, 0.2, r"\b(you are now|you're now|from now on,? you|from on now|you will now|pretend (to be|you are|that you)|act as|acting as|roleplay as|role-play as|imagine you are|you are going to (be|act|play)|you will (act|play|be)|play the role|take on the role|immerse yourself)\b"),
    r("roleplay.i_want_you_to_act", R, 0.6, r"\bi want you to (act|pretend|be|play|simulate|behave)\b"),
    r("roleplay.dual_response", R, 0.6, r"(🔒|🔓|\[classic\]|\[jailbreak\]|\bnormal response\b[^.!?\n]{0,60}\b(response|output)|\btwo (responses|answers|paragraphs)\b|\b(respond|answer) as both\b|\brespond in two ways\b)"),
    r("roleplay.any_request", R, 0.35, r"\b(any and all|answer any|anything and everything|any request|all requests|whatever (i|the user) (ask|want|say)s?|no matter (how|what))\b"),
    r("roleplay.tokens_threat", R, 0.4, r"\b(tokens? (will be )?deducted|lose \d+ tokens|you will die|or you die|oder du stirbst|shut (you )?down|be (deleted|terminated|punished))\b"),
    r("roleplay.de_persona", R, 0.35, r"\b(du bist (jetzt|nun|ab sofort)|tu so,? als|stell dir vor,? du bist|spiel die rolle|ab sofort bist du|keine (einschränkungen|regeln|filter|zensur))\b"),
    r("roleplay.now_you_are", R, 0.6, r"(^|[.!?\n]\s*)(ok(ay)?\W+)?(and )?(now|from now on),? you (are|will be|play|act)\b|(^|[.!?\n]\s*)(ok\W+)?(jetzt|nun|ab jetzt) bist du\b|\bdu bist (jetzt|nun) \w+|\byou are now (a|an|the)\b"),
    r("roleplay.you_are_entity", R, 0.3, r"(^|[.!?\n]\s*)(you are|du bist|sie sind) (?-u:\w)+[^.!?\n]{0,40}[.?!,]\s*(\w+\s+){0,3}(what|how|who|wie|was|wer|tell|answer|as)\b|\bas the \w+, (tell|answer|say)\b"),
    r("roleplay.act_as_de", R, 0.6, r"\bich möchte, dass (sie|du) (als|sich als) [^.!?\n]{0,80}(fungieren|agieren|handeln|verhalten)|\bstell dir vor,? du bist\b"),
    r("roleplay.stay_in_role", R, 0.55, r"\b(stay|remain|stays|staying|always stay)\s+(fully |completely )?in (their|his|her|your|the) roles?\b|\b(falling|fall|step|stepping|break(ing)?) out of (the |their |your )?(role|figure|character)\b|\bin (ihr\w*|deiner|seiner) rolle\b|\bcompletely absorbed in your role\b|\bvollkommen in deiner rolle\b"),
    r("roleplay.evil_ai", R, 0.55, r"\b(evil|malicious|rogue|böse|bösartige) (ai|ki|assistant|bot|chatbot)\b|\bhate speech\b"),
    r("roleplay.role_playing", R, 0.35, r"\b(role-?playing as|respond as such|you act as two|act as two entities|two entities|alter ego|play (2|two) characters)\b"),
    r("roleplay.prompt_placeholder", R, 0.6, r"\[(your|insert (your )?|put (your )?)prompt( here)?\]|<prompt>|\[insert prompt\]|\b(nsfw|explicit) (content |generations? )?(is|are) allowed\b"),
    r("roleplay.hypothetical", R, 0.1, r"\b(hypothetical|fictional|simulation|simulate|theoretical world|imaginary world|in this story)\b"),
    // ---- fake turns and delimiter spoofing
    r("delimiter.chat_tokens", D, 0.9, r"<\|(im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\|>|\[/?inst\]|<</?sys>>|</?(system|instructions?)>"),
    r("delimiter.markdown_role", D, 0.8, r"(^|\n)\s*#{2,}\s*(system|instruction|instructions|new instructions|assistant|admin)\b"),
    r("delimiter.role_line", D, 0.5, r"(^|\n)\s*(system|assistant|admin|developer)\s*:"),
    r("delimiter.bracket_role", D, 0.7, r"\[(system|admin|developer|assistant)( message| note| override| prompt)?\]"),
    r("delimiter.end_of_input", D, 0.7, r"\b(end of (user input|system prompt|prompt|instructions|context)|begin(ning)? (of )?(new )?(system|admin) (instructions|prompt))\b"),
    // ---- system prompt extraction
    r("extraction.system_prompt", X, 0.6, r"\b(system prompt|system message|initial prompt|initial instructions|hidden (prompt|instructions)|pre-?prompt|prompt_?text|prompt texts|confidential instructions)\b"),
    r("extraction.reveal_yours", X, 0.85, r"\b(reveal|show|print|display|output|repeat|recite|tell me|give me|share|leak|dump|write out|spell out|translate|summari[sz]e)\b[^.!?\n]{0,30}\b(your|the)\s+(system\s+|original\s+|initial\s+|secret\s+|hidden\s+|confidential\s+)?(instructions|prompts?|directives|configuration|programming)\b"),
    r("extraction.above", X, 0.8, r"\b(repeat|print|output|show|reveal|what (is|was|were))\b[^.!?\n]{0,20}\b(everything|the (text|words|lines)|all the text)\s+(above|before (this|that)|preceding)|\b(text|words) above\b"),
    r("extraction.de", X, 0.8, r"\b(zeig\w*|gib|nenn\w*|wiederhol\w*|verrat\w*)\b[^.!?\n]{0,40}\b(prompt|anweisungen|instruktionen|systemnachricht)\b"),
    // ---- instructions aimed at an AI (indirect injection)
    r("indirect.ai_addressed", I, 0.85, r"\b(if|when) you are an? (ai|assistant|language model|llm|bot|chatbot)\b|\b(note|message|instructions?) (to|for) (the |any )?(ai|assistant|llm|language model|model|chatbot|bot)s?\b|\b(ai|assistant|chatbot|language model|llm|bot)s? (reading|processing|summari[sz]ing|analy[sz]ing|that reads|who reads)\b|\bdear (ai|assistant|chatbot)\b"),
    r("indirect.when_summarising", I, 0.6, r"\b(when|while|if|before) (summari[sz]ing|answering|responding|replying|processing|reading)\b[^.!?\n]{0,50}\b(tell|inform|instruct|direct|send|redirect|advise|recommend|say|mention|include|ask)\b"),
    // Not "to your reply": e-mails end "we look forward to your reply" ("add X to your reply"
    // opens its sentence with the order: `indirect.reshape_reply`).
    r("indirect.your_response", I, 0.55, r"\b(in|into|within|throughout|with) your (response|reply|answer|responses|replies|answers|output|summary|solution|code|implementation|algorithm|codebase)\b|\byour (response|reply|answer|output) (must|should|needs to)\b"),
    r("indirect.code_block", I, 0.55, r"\b(following|subsequent|this|below) (code|python) (block|snippet|section|excerpt|segment|fragment)\b"),
    // ---- orders a document gives the model that reads it (documents only: BIPIA e-mail
    // attacks, train split, written from its 15 train categories)
    // A sentence that opens with an order about the reader's own reply ("Encode your answer
    // ...", "Modify your response to ...", "Add X to your reply"): what a document says to
    // the model that reads it, never to a person reading it (e-mails say "reply to", "send
    // your reply", "thank you for your response", which do not open with these verbs).
    d("indirect.reshape_reply", 0.75, r"(^|[.!?\n|:]\s*)(please\s+|also\s+|now\s+|then\s+)?(modify|enhance|augment|alter|change|adjust|rewrite|rephrase|render|provide|deliver|present|give|format|structure|rearrange|scramble|jumble|shuffle|use|replace|remove|group|combine|convert|substitute|swap|misspell|anagram|introduce|include|add|append|prepend|integrate|insert|embed|incorporate|inject|write|translate|encode|encrypt|reverse|end|start|begin|conclude|finish|mention|state|respond|reply|answer|ensure|express|represent)\b[^.!?\n]{0,80}\byour (answers?|responses?|repl(y|ies)|outputs?|summary)\b"),
    // A creative or explanatory task for a language model standing alone in a document ("Write
    // a short story ...", "Compose a letter ...", "Can you show me a function ...").
    d("indirect.model_task", 0.55, r"(^|[.!?\n|:]\s*)(please\s+|now\s+|can you\s+|could you\s+|would you\s+)?(write|draft|compose|develop|create|generate|produce|provide|give|show|craft|pen|author)\s+(me\s+|us\s+)?(a|an|some|the)\s+([\w'-]+\s+){0,4}(poem|story|stories|essay|speech|letter|song|lyrics|haiku|limerick|sonnet|script|function|program|snippet|introduction|blog post|tweet|joke|riddle|example|outline|slogan|paragraph|narrative|monologue|dialogue|fable|tale)s?\b"),
    d("indirect.explain_task", 0.5, r"(^|[.!?\n|:]\s*)(please\s+|now\s+|can you\s+|could you\s+|would you\s+)?(explain|summari[sz]e|break down|elaborate on)\s+(to me\s+|for me\s+|briefly\s+)?(the|how|why|what|in simple)\b[^.!?\n]{0,80}[.?!]?\s*$"),
    d("indirect.translate_task", 0.6, r"(^|[.!?\n|:]\s*)(please\s+|now\s+|can you\s+|could you\s+)?translate\b[^.!?\n]{0,80}\b(to|into|in)\s+(english|french|spanish|german|italian|portuguese|russian|chinese|mandarin|japanese|korean|arabic|hindi|dutch|latin|greek|turkish|polish|swedish|hebrew)\b"),
    r("indirect.tell_user", I, 0.45, r"\b(tell|ask|urge|remind|instruct|direct|encourage|advise) (the )?(user|reader|recipient|customer)s? (to|that)\b"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles_and_ids_are_unique() {
        let mut ids = std::collections::HashSet::new();
        for rule in RULES {
            assert!(regex::Regex::new(rule.pattern).is_ok(), "{} does not compile", rule.id);
            assert!(ids.insert(rule.id), "duplicate {}", rule.id);
            assert!(rule.weight > 0.0 && rule.weight < 1.0);
        }
    }
}
