//! Shared by the differential tests (`tests/slicing.rs`, `tests/store.rs`):
//! a reproducible generator and the part of an answer both sides of a
//! comparison must agree on. Kept out of `common/mod.rs`, which every test
//! crate includes, because only these two use it.
#![allow(dead_code)] // each test crate uses its own part of it

use cedar_policy::{AuthorizationError, Decision as CedarDecision, Response};
use doorman::{Answer, Decision};

/// SplitMix64: fixed seed in, the same requests out, so a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// An answer reduced to what both sides must agree on: reasons and errors
/// sorted, since only doorman promises an order.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub decision: Decision,
    pub reasons: Vec<String>,
    pub errors: Vec<(String, String)>,
}

impl Outcome {
    /// Cedar's own answer.
    pub fn of_cedar(response: &Response) -> Outcome {
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        reasons.sort();
        let mut errors: Vec<(String, String)> = response
            .diagnostics()
            .errors()
            .map(|e| match e {
                AuthorizationError::PolicyEvaluationError(err) => {
                    (err.policy_id().to_string(), err.inner().to_string())
                }
            })
            .collect();
        errors.sort();
        Outcome {
            decision: match response.decision() {
                CedarDecision::Allow => Decision::Allow,
                CedarDecision::Deny => Decision::Deny,
            },
            reasons,
            errors,
        }
    }

    /// doorman's answer.
    pub fn of_answer(answer: Answer) -> Outcome {
        let mut reasons = answer.reasons;
        reasons.sort();
        let mut errors: Vec<(String, String)> = answer
            .errors
            .into_iter()
            .map(|e| (e.policy, e.message))
            .collect();
        errors.sort();
        Outcome {
            decision: answer.decision,
            reasons,
            errors,
        }
    }
}
