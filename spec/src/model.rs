//! The stateright [`Model`] over the transition relation of [`crate::steps`].

use stateright::{Model, Property};

use crate::config::Config;
use crate::properties::{INVARIANTS, WITNESSES};
use crate::state::State;
use crate::steps::{self, Action};

/// The protocol model for one configuration.
#[derive(Clone, Debug)]
pub struct TetherModel {
    /// Bounds, options and re-introduced bugs.
    pub cfg: Config,
}

impl TetherModel {
    /// A model of `cfg`.
    pub fn new(cfg: Config) -> Self {
        TetherModel { cfg }
    }
}

fn invariant<const I: usize>(m: &TetherModel, s: &State) -> bool {
    (INVARIANTS[I].holds)(&m.cfg, s)
}

fn witness<const I: usize>(m: &TetherModel, s: &State) -> bool {
    (WITNESSES[I].holds)(&m.cfg, s)
}

impl Model for TetherModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State::initial(&self.cfg)]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        steps::actions(&self.cfg, state, actions);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        Some(steps::apply(&self.cfg, last, action).0)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let conds: [fn(&TetherModel, &State) -> bool; INVARIANTS.len()] = [
            invariant::<0>,
            invariant::<1>,
            invariant::<2>,
            invariant::<3>,
            invariant::<4>,
            invariant::<5>,
            invariant::<6>,
            invariant::<7>,
            invariant::<8>,
        ];
        let witnesses: [fn(&TetherModel, &State) -> bool; WITNESSES.len()] = [
            witness::<0>,
            witness::<1>,
            witness::<2>,
            witness::<3>,
            witness::<4>,
            witness::<5>,
            witness::<6>,
            witness::<7>,
            witness::<8>,
            witness::<9>,
            witness::<10>,
            witness::<11>,
        ];
        let mut props: Vec<Property<Self>> = INVARIANTS
            .iter()
            .zip(conds)
            .map(|(p, c)| Property::always(p.name, c))
            .collect();
        props.extend(
            WITNESSES
                .iter()
                .zip(witnesses)
                .map(|(p, c)| Property::sometimes(p.name, c)),
        );
        props
    }
}
