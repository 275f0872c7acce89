"""A checked definition → one ``transitions.Machine`` per (workflow, content hash).

The machine is the single authority on *which triggers are allowed from a state*
and *which transition a trigger takes*; the engine asks it and never works
either out from the definition itself.

It is built once, with ``model=None`` and ``auto_transitions=False``, and is
only read afterwards.  Each machine transition carries its
:class:`~engine.definitions.model.TransitionSpec` (``_SpecTransition.spec``).
Per event the case's current state is put on a throwaway :class:`_Case` and
the machine's own ``Event.trigger`` runs on it, without ``add_model``: the
event refuses a state it has no transition from (``MachineError``, translated
here into :class:`~engine.errors.TriggerNotAllowed`), evaluates the guards in
declaration order (the first transition whose conditions all pass wins, as
transitions documents), moves the object's state, and its
``after_state_change`` callback notes the transition taken.  The engine writes
that resulting state.  Nothing is added to or removed from the machine, so
concurrent events need no lock.

Why this design: the previous one attached a transient model with
``add_model`` / ``remove_model`` under a global lock, after the engine had
pre-checked allowed triggers and candidates from the definition.  Measured on
the farmland lifecycle (7 events), both in one process, runs alternated, on a
shared 2-core box (load average 6–9, so read the ratios):

* the machine's part of an event alone (allowed triggers + candidates +
  fire, no database; an ad-hoc script timing the previous compiler against
  this one): now 0.10–0.14 of the time before in each of six repeats (medians
  of 9 runs each: e.g. 218 → 29 µs, 483 → 67 µs per event);
* ``bench/events.py --cases 50 --repeat 5 --profile``: "machine fire" went
  from 4 % to 2 % of an operation under cProfile; the whole event is
  dominated by SQL (6 statements, unchanged) and the load made end-to-end
  events/s too noisy to tell apart (SQLite event medians of 3 alternated runs:
  42 ops/s before, 59 now; PostgreSQL 24 and 29; 300 / 165 on a quiet box).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transitions import EventData, Machine, MachineError, Transition

from engine.definitions.expressions import Guard, compile_guard
from engine.definitions.model import TransitionSpec, Workflow
from engine.errors import TriggerNotAllowed, UnknownTrigger

__all__ = ["CompiledWorkflow", "Taken"]


@dataclass(frozen=True, kw_only=True)
class Taken:
    """What the machine did for one event: the transition it took and the state it reached."""

    transition: TransitionSpec
    state: str


class _SpecTransition(Transition):
    """A machine transition that knows the definition's transition it was built from."""

    def __init__(self, *args: Any, spec: TransitionSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec


class _Machine(Machine):
    transition_cls = _SpecTransition


class _Case:
    """A case's state while one event runs; never added to the machine."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.taken: TransitionSpec | None = None


def _note_taken(event: EventData) -> None:
    """``after_state_change``: the transition the machine has just taken."""
    case, transition = event.model, event.transition
    assert isinstance(case, _Case) and isinstance(transition, _SpecTransition)
    case.taken = transition.spec


class CompiledWorkflow:
    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.guards: dict[int, Guard] = {
            t.index: compile_guard(t.when) for t in workflow.transitions if t.when is not None
        }
        self.machine = _Machine(
            model=None,
            states=[s.name for s in workflow.states],
            initial=workflow.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
            after_state_change=[_note_taken],
        )
        for t in workflow.transitions:
            self.machine.add_transition(
                t.trigger,
                list(t.sources),
                t.dest,
                conditions=[self._condition(t)] if t.index in self.guards else [],
                spec=t,
            )

    def _condition(self, t: TransitionSpec) -> Any:
        guard = self.guards[t.index]

        def condition(event: EventData) -> bool:
            return guard(event.kwargs["env"])

        return condition

    def allowed(self, state: str) -> list[str]:
        """The triggers the machine has a transition for from *state*, sorted."""
        return sorted(self.machine.get_triggers(state))

    def options(self, state: str, trigger: str) -> list[TransitionSpec]:
        """The transitions *trigger* may take from *state*, in the order the machine tries them.

        Raises :class:`UnknownTrigger` if the machine has no such event and
        :class:`TriggerNotAllowed` if it has none from *state*.
        """
        event = self.machine.events.get(trigger)
        if event is None:
            raise UnknownTrigger(trigger, self.allowed(state))
        # .get, never [...]: Event.transitions is a defaultdict, and reading a missing
        # source through [] would add it, making the trigger "allowed" from there.
        found = event.transitions.get(state, [])
        if not found:
            raise TriggerNotAllowed(trigger, state, self.allowed(state))
        return [t.spec for t in found if isinstance(t, _SpecTransition)]

    def fire(self, state: str, trigger: str, env: Mapping[str, Any]) -> Taken | None:
        """What the machine does with *trigger* from *state*; None if every guard is false.

        Raises :class:`UnknownTrigger` / :class:`TriggerNotAllowed` as :meth:`options` does.
        """
        event = self.machine.events.get(trigger)
        if event is None:
            raise UnknownTrigger(trigger, self.allowed(state))
        case = _Case(state)
        try:
            moved = event.trigger(case, env=env)
        except MachineError:
            raise TriggerNotAllowed(trigger, state, self.allowed(state)) from None
        if not moved or case.taken is None:
            return None
        return Taken(transition=case.taken, state=case.state)
