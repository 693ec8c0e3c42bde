//! Behaviour of the checker on hand-written answers: the failures the firewall exists to catch
//! (changed numbers, flipped negations, invented fees, wrong citations) and what must pass.

use keel_ground::Checker;

const RETURNS: &str = "Items can be returned within 14 days of delivery. Refunds are issued to the original \
payment method. Sale items cannot be returned. Shipping is free on orders over $50.";
const SHIPPING: &str = "Standard shipping takes three to five business days. Express shipping costs 12 dollars \
and arrives the next business day.";

#[allow(clippy::unwrap_used)] // a helper, not a #[test]: the lint exemption does not reach it
fn checker() -> Checker {
    Checker::new().unwrap()
}

#[test]
fn a_changed_number_is_unsupported() {
    let v = checker().check_answer("You can return items within 30 days of delivery [1].", &[RETURNS]);
    assert!(!v.supported);
    assert!(v.claims[0].missing.iter().any(|m| m == "number 30"), "{:?}", v.claims[0].missing);
}

#[test]
fn a_faithful_paraphrase_with_the_right_numbers_passes() {
    let v = checker().check_answer("Items may be returned within 14 days after delivery [1].", &[RETURNS]);
    assert!(v.supported, "{v:?}");
    let v = checker().check_answer("Express shipping costs $12 and arrives the next business day [1].", &[SHIPPING]);
    assert!(v.supported, "{v:?}");
}

#[test]
fn number_words_and_digits_are_the_same_number() {
    let c = checker();
    let v = c.check_answer("Standard shipping takes 3 to 5 business days [1].", &[SHIPPING]);
    assert!(v.supported, "{v:?}");
    let passage = "Members get thirty days to return items.";
    let v = c.check_answer("Members get 30 days to return items [1].", &[passage]);
    assert!(v.supported, "{v:?}");
    let v = c.check_answer("Members get forty days to return items [1].", &[passage]);
    assert!(!v.supported, "{v:?}");
}

#[test]
fn dropped_or_added_negation_is_caught() {
    let c = checker();
    let v = c.check_answer("Sale items can be returned [1].", &[RETURNS]);
    assert!(!v.supported, "dropped negation: {v:?}");
    assert!(v.claims[0].missing.iter().any(|m| m == "negation"));
    let v = c.check_answer("Refunds are not issued to the original payment method [1].", &[RETURNS]);
    assert!(!v.supported, "added negation: {v:?}");
    let v = c.check_answer("Sale items cannot be returned [1].", &[RETURNS]);
    assert!(v.supported, "kept negation: {v:?}");
}

#[test]
fn an_invented_fee_is_caught() {
    let v = checker().check_answer("A $5 restocking fee applies to returns [1].", &[RETURNS]);
    assert!(!v.supported, "{v:?}");
    let m = &v.claims[0].missing;
    assert!(m.iter().any(|m| m == "number $5"), "{m:?}");
}

#[test]
fn a_true_claim_citing_the_wrong_chunk_fails() {
    let c = checker();
    let right = c.check_answer("Items can be returned within 14 days of delivery [1].", &[RETURNS, SHIPPING]);
    assert!(right.supported, "{right:?}");
    let wrong = c.check_answer("Items can be returned within 14 days of delivery [2].", &[RETURNS, SHIPPING]);
    assert!(!wrong.supported, "{wrong:?}");
    let missing = c.check_answer("Items can be returned within 14 days of delivery [3].", &[RETURNS, SHIPPING]);
    assert!(!missing.supported);
    assert!(missing.claims[0].missing.iter().any(|m| m == "citation [3] has no chunk"));
}

#[test]
fn factual_claims_need_a_citation_pleasantries_do_not() {
    let c = checker();
    let v = c.check_answer(
        "Thanks for asking! Items can be returned within 14 days of delivery [1]. I hope this helps. \
         Is there anything else I can do for you?",
        &[RETURNS],
    );
    assert!(v.supported, "{v:?}");
    assert_eq!(v.claims.iter().filter(|c| c.factual).count(), 1);
    let v = c.check_answer("Items can be returned within 14 days of delivery.", &[RETURNS]);
    assert!(!v.supported);
    assert_eq!(v.claims[0].missing, vec!["uncited".to_string()]);
}

#[test]
fn an_invented_entity_is_caught_and_multi_citations_pool_evidence() {
    let c = checker();
    let v = c.check_answer("Refunds are issued by PayPal to the original payment method [1].", &[RETURNS]);
    assert!(!v.supported);
    assert!(v.claims[0].missing.iter().any(|m| m == "entity PayPal"), "{v:?}");
    let v = c.check_answer(
        "Shipping is free on orders over $50, and express shipping costs 12 dollars [1][2].",
        &[RETURNS, SHIPPING],
    );
    assert!(v.supported, "{v:?}");
}

#[test]
fn unsupported_claims_are_listed_with_spans() {
    let answer = "Items can be returned within 14 days of delivery [1]. Gift cards never expire [1].";
    let v = checker().check_answer(answer, &[RETURNS]);
    let bad: Vec<_> = v.unsupported().collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(&answer[bad[0].span.0..bad[0].span.1], "Gift cards never expire [1].");
    assert!(v.score < 0.5);
}

#[test]
fn score_without_citations_uses_the_whole_context() {
    let c = checker();
    let good = c.score(RETURNS, "Sale items cannot be returned.");
    let bad = c.score(RETURNS, "Gift cards can be exchanged for cash at any branch in Toronto.");
    assert!(good > c.threshold() && bad < c.threshold(), "{good} {bad}");
}

#[test]
fn the_checker_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Checker>();
}
