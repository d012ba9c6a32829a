//! `/v1/is_authorized` and `/v1/batch_is_authorized` bodies through the
//! sidecar's own readers and decision path, against the bundled model.
//!
//! The first byte chooses: bit 0 a batch (else a single body), bit 1 a
//! `--max-batch` of 3 (else the default 100); the rest is the body.
//!
//! Asserted, beyond not panicking:
//! - every refusal is a 400 `ApiError` whose message starts with the field
//!   it names, a batch item's within `requests[i]`;
//! - when the typed reader takes a body, the walk reads the same question
//!   (same query, same entities) and the decision path answers both alike;
//!   what the server reads is the typed reading, else the walk's;
//! - every answer is consistent with the policies (an allow has permits
//!   as reasons, a deny forbids or none; all of them loaded, in order);
//! - a single body the server accepts, sent as a batch of one, is read
//!   and answered the same (its refusal placed within `requests[0]`).

#![no_main]

use doorman::fuzzing::v1;
use doorman::server::ApiError;
use doorman::{Answer, Snapshot};
use doorman_fuzz::{bundled, check_answer, check_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let max_batch = if choice & 2 == 0 { 100 } else { 3 };
    if choice & 1 == 0 {
        single(bundled(), body, max_batch);
    } else {
        batch(bundled(), body, max_batch);
    }
});

fn check(snapshot: &Snapshot, answer: &Result<Answer, ApiError>, within: &str) {
    match answer {
        Ok(a) => check_answer(snapshot, a),
        Err(e) => check_refusal(e, within),
    }
}

fn single(snapshot: &Snapshot, body: &[u8], max_batch: usize) {
    let walked = v1::walked_single(body);
    if let Err(e) = &walked {
        check_refusal(e, "");
    }
    let typed = v1::typed_single(body);
    if let Some(t) = &typed {
        match &walked {
            Ok(w) => assert_eq!(t, w, "the typed reader and the walk read differently"),
            Err(e) => panic!("the typed reader took a body the walk refuses: {e}"),
        }
    }
    let read = v1::read_single(body);
    match (&typed, &read) {
        (Some(t), Ok(r)) => assert_eq!(t, r),
        (Some(_), Err(e)) => panic!("the server refused what the typed reader took: {e}"),
        (None, _) => assert_eq!(&read, &walked),
    }
    let Ok(item) = read else { return };
    let answer = v1::decide(snapshot, &item);
    check(snapshot, &answer, "");
    if let (Some(t), Ok(w)) = (&typed, &walked) {
        assert_eq!(v1::decide(snapshot, t), v1::decide(snapshot, w));
    }

    // The same question as a batch of one.
    let mut wrapped = b"{\"requests\": [".to_vec();
    wrapped.extend_from_slice(body);
    wrapped.extend_from_slice(b"]}");
    let batch = v1::read_batch(&wrapped, max_batch)
        .unwrap_or_else(|e| panic!("a good body refused as a batch of one: {e}"));
    let items: Vec<_> = batch.items().collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0], Ok(item.query()), "read otherwise in a batch");
    let decided = v1::decide_batch(snapshot, batch).expect("no shared entities to refuse");
    let (in_batch, _) = &decided[0];
    match (&answer, in_batch) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "answered otherwise in a batch"),
        (Err(a), Err(b)) => {
            assert_eq!(a.code, b.code, "{a} / {b}");
            assert_eq!(a.clone().within("requests[0]"), *b);
        }
        (a, b) => panic!("alone: {a:?}; in a batch: {b:?}"),
    }
}

fn batch(snapshot: &Snapshot, body: &[u8], max_batch: usize) {
    let walked = v1::walked_batch(body, max_batch);
    match &walked {
        Err(e) => check_refusal(e, ""),
        Ok(b) => {
            for (i, item) in b.items().enumerate() {
                if let Err(e) = item {
                    check_refusal(e, &format!("requests[{i}]"));
                }
            }
        }
    }
    let typed = v1::typed_batch(body, max_batch);
    if let Some(t) = &typed {
        match &walked {
            Ok(w) => assert_eq!(t, w, "the typed reader and the walk read differently"),
            Err(e) => panic!("the typed reader took a batch the walk refuses: {e}"),
        }
        assert!(
            t.items().all(|i| i.is_ok()),
            "the typed reader took a bad item"
        );
    }
    let read = v1::read_batch(body, max_batch);
    match (&typed, &read) {
        (Some(t), Ok(r)) => assert_eq!(t, r),
        (Some(_), Err(e)) => panic!("the server refused what the typed reader took: {e}"),
        (None, _) => assert_eq!(&read, &walked),
    }
    let Ok(read) = read else { return };
    let queries: Vec<_> = read.items().map(|i| i.ok().cloned()).collect();
    assert!(queries.len() <= max_batch, "more items than --max-batch");
    let decided = match v1::decide_batch(snapshot, read) {
        Ok(d) => d,
        Err(e) => {
            check_refusal(&e, "entities");
            return;
        }
    };
    assert_eq!(decided.len(), queries.len());
    for (i, ((answer, query), read)) in decided.iter().zip(&queries).enumerate() {
        check(snapshot, answer, &format!("requests[{i}]"));
        assert_eq!(query, read, "item {i} answered for another question");
    }
    if typed.is_some() {
        let walked = v1::walked_batch(body, max_batch).expect("read above");
        let again = v1::decide_batch(snapshot, walked);
        assert_eq!(
            again.as_ref().ok(),
            Some(&decided),
            "the walk's reading answered otherwise"
        );
    }
}
