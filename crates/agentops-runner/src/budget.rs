//! The budget policy: which limit a run or an agent has spent, checked
//! before every model call. Pure, so it is tested without a run.

use crate::spec::Budget;
use crate::state::Spent;

/// Which limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Tokens,
    Usd,
    Turns,
    Seconds,
}

impl Limit {
    /// The name in `--budget-<name>` and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Tokens => "tokens",
            Limit::Usd => "usd",
            Limit::Turns => "turns",
            Limit::Seconds => "seconds",
        }
    }
}

/// Whose budget it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Run,
    Agent(String),
}

/// A spent budget: what ran out, how much was used of how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    pub scope: Scope,
    pub limit: Limit,
    pub used: f64,
    pub allowed: f64,
}

impl Exceeded {
    /// The pause detail: what ran out and how to go on.
    pub fn detail(&self, run: &str) -> String {
        let scope = match &self.scope {
            Scope::Run => "the run's".to_owned(),
            Scope::Agent(a) => format!("agent {a}'s"),
        };
        let fmt = |v: f64| match self.limit {
            Limit::Usd => format!("${v:.4}"),
            _ => format!("{v:.0}"),
        };
        let what = self.limit.as_str();
        format!(
            "{scope} {what} budget spent ({} of {}); resume with a larger one: agentops resume {run} --budget-{what} N",
            fmt(self.used),
            fmt(self.allowed)
        )
    }
}

/// The first limit spent, in the order tokens, USD, turns, seconds for the
/// run, then tokens, USD, turns for the agent of the phase (`agent_spent` is
/// what this phase's agent has spent; agents have no time limit of their
/// own). A limit is spent when use reaches it.
pub fn exceeded(
    run: &Budget,
    run_spent: &Spent,
    seconds: f64,
    agent: (&str, &Budget),
    agent_spent: &Spent,
) -> Option<Exceeded> {
    let check = |scope: Scope, b: &Budget, s: &Spent, secs: Option<f64>| {
        let limits = [
            (Limit::Tokens, b.tokens.map(|l| l as f64), s.tokens as f64),
            (Limit::Usd, b.usd, s.usd),
            (Limit::Turns, b.turns.map(|l| l as f64), s.turns as f64),
            (
                Limit::Seconds,
                secs.and(b.seconds.map(|l| l as f64)),
                secs.unwrap_or(0.0),
            ),
        ];
        limits.into_iter().find_map(|(limit, allowed, used)| {
            allowed.filter(|&a| used >= a).map(|allowed| Exceeded {
                scope: scope.clone(),
                limit,
                used,
                allowed,
            })
        })
    };
    check(Scope::Run, run, run_spent, Some(seconds))
        .or_else(|| check(Scope::Agent(agent.0.to_owned()), agent.1, agent_spent, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    fn spent(tokens: u64, usd: f64, turns: u64) -> Spent {
        Spent { tokens, usd, turns }
    }

    #[test]
    fn nothing_is_spent_without_limits() {
        let none = Budget::default();
        assert_eq!(
            exceeded(
                &none,
                &spent(u64::MAX / 2, 1e9, 1_000_000),
                1e9,
                ("a", &none),
                &spent(1, 1.0, 1)
            ),
            None
        );
    }

    #[test]
    fn run_limits_come_first_in_their_order() {
        let run = Budget {
            tokens: Some(100),
            usd: Some(1.0),
            turns: Some(3),
            seconds: Some(60),
        };
        let agent = Budget {
            tokens: Some(10),
            ..Budget::default()
        };
        // Everything spent: the run's tokens are named.
        let e = exceeded(
            &run,
            &spent(100, 2.0, 9),
            99.0,
            ("coder", &agent),
            &spent(50, 0.0, 0),
        )
        .unwrap();
        assert_eq!(
            (e.scope, e.limit, e.used, e.allowed),
            (Scope::Run, Limit::Tokens, 100.0, 100.0)
        );
        let e = exceeded(
            &run,
            &spent(99, 1.0, 9),
            0.0,
            ("coder", &agent),
            &spent(0, 0.0, 0),
        )
        .unwrap();
        assert_eq!(e.limit, Limit::Usd);
        assert_eq!(
            e.detail("R1"),
            "the run's usd budget spent ($1.0000 of $1.0000); resume with a larger one: agentops resume R1 --budget-usd N"
        );
        let e = exceeded(
            &run,
            &spent(0, 0.0, 3),
            0.0,
            ("coder", &agent),
            &spent(0, 0.0, 0),
        )
        .unwrap();
        assert_eq!(e.limit, Limit::Turns);
        let e = exceeded(
            &run,
            &spent(0, 0.0, 0),
            60.4,
            ("coder", &agent),
            &spent(0, 0.0, 0),
        )
        .unwrap();
        assert_eq!(
            (e.limit, e.detail("R1").contains("(60 of 60)")),
            (Limit::Seconds, true)
        );
    }

    #[test]
    fn an_agents_limit_names_the_agent_and_has_no_clock() {
        let run = Budget::default();
        let agent = Budget {
            turns: Some(2),
            seconds: Some(1),
            ..Budget::default()
        };
        assert_eq!(
            exceeded(
                &run,
                &spent(0, 0.0, 0),
                1e6,
                ("coder", &agent),
                &spent(0, 0.0, 1)
            ),
            None
        );
        let e = exceeded(
            &run,
            &spent(0, 0.0, 0),
            0.0,
            ("coder", &agent),
            &spent(0, 0.0, 2),
        )
        .unwrap();
        assert_eq!(e.scope, Scope::Agent("coder".into()));
        assert_eq!(
            e.detail("R1"),
            "agent coder's turns budget spent (2 of 2); resume with a larger one: agentops resume R1 --budget-turns N"
        );
    }

    proptest! {
        /// A limit is reported exactly when use has reached it.
        #[test]
        fn reported_iff_reached(limit in 1u64..1_000, used in 0u64..2_000) {
            let run = Budget { tokens: Some(limit), ..Budget::default() };
            let got = exceeded(&run, &spent(used, 0.0, 0), 0.0, ("a", &Budget::default()), &Spent::default());
            prop_assert_eq!(got.is_some(), used >= limit);
        }
    }
}
