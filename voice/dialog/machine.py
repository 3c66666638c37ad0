"""The headset dialog engine: a state machine whose states are data.

A `Workflow` is a table of `State` rows. Each row names the prompt the state speaks, the
command words it listens for and the handler (a method name on the dialog) each word runs,
and the digit-string length it accepts with its handler. The state's grammar is built from
that row, so a state can only hear words it has a handler for. A workflow (pick, count,
receive, ...) is a `Dialog` subclass with its table, its handlers and its prompt file
``voice/locales/<locale>/<workflow>.toml``; this module knows nothing about picking.

The engine enforces what every workflow shares:
- an utterance that was not accepted by the recogniser, is below `min_confidence`, or is
  not in the state's grammar runs no handler: the picker hears "Say again." and the state's
  instruction again;
- a word that changes work (the workflow's `work_changing`: sign off, short, skip slot,
  damaged, cancel, call supervisor) needs `WORK_CHANGING_CONFIDENCE` as well: spoken
  digits must never become one;
- every prompt ends with the instruction of the state the dialog is in, so "say again"
  (`repeat`) and a reconnect can always say it again;
- a handler that raises `WorkRejected` changes nothing: its reason is spoken and the
  dialog stays where it was;
- `hear` is serialised, so two copies of one answer arriving together are handled one
  after the other (the second lands in the next state's grammar).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from voice.dialog.prompts import Prompts, load_prompts
from voice.dialog.typed import tokens_from_text
from voice.grammar import DIGITS, Grammar, build_grammar

log = logging.getLogger(__name__)


# Human digits said to every pick state (fsdd-dev, clean and over a cheap headset, 1,920
# utterances, bench/recognition.py "digits_heard_as_commands", listening grammar): none was
# taken for a word that changes work; two were taken for "no" (0.50-0.55) and three for
# "ready" (up to 0.9996, over the cheap headset). 0.65 is a margin above what a first,
# smaller run reached (0.60), not a boundary measured on spoken commands: there are no
# human recordings of commands here. Typed answers have confidence 1.
WORK_CHANGING_CONFIDENCE = 0.65


class WorkRejected(Exception):
    """The warehouse refused an action (no stock to take, line already closed, ...).

    `reason` is a stable code; the locale's ``[reasons]`` table may give it a spoken text.
    """

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class State:
    """One row of a workflow table.

    `prompt`: key of the state's instruction in the prompt files. `words`: command token →
    handler method name. `digits`: (min, max) length of a digit string the state accepts,
    handled by `on_digits`. `display`: which prompt parameters the big-text screen shows.
    `final`: the dialog ends on entering this state.
    """

    name: str
    prompt: str
    words: Mapping[str, str] = field(default_factory=dict)
    digits: tuple[int, int] | None = None
    on_digits: str | None = None
    display: tuple[str, ...] = ()
    final: bool = False

    def __post_init__(self) -> None:
        if (self.digits is None) != (self.on_digits is None):
            raise ValueError(f"state {self.name!r}: digits and on_digits go together")
        if self.final and (self.words or self.digits):
            raise ValueError(f"final state {self.name!r} listens for nothing")

    def handlers(self) -> Iterable[str]:
        yield from self.words.values()
        if self.on_digits:
            yield self.on_digits


@dataclass(frozen=True)
class Workflow:
    """A dialog's table: its name (also its prompt file's name) and its states."""

    name: str
    states: tuple[State, ...]

    def __post_init__(self) -> None:
        names = [s.name for s in self.states]
        if len(set(names)) != len(names):
            raise ValueError(f"workflow {self.name!r} repeats a state name")

    def grammar(self, state: State, locale: str) -> Grammar:
        """What `state` takes, in `locale`."""
        name = f"{self.name}.{state.name}"
        return build_grammar(name, tuple(state.words), digits=state.digits, locale=locale)

    def grammars(self, locale: str) -> Iterator[Grammar]:
        """Every grammar a dialog of this workflow reads answers with: each state's
        listening grammar and, where it takes digits, its answers of each length (what a
        speech warm-up prepares, so no picker's first answer waits for it)."""
        for state in self.states:
            if state.final:
                continue
            taken = self.grammar(state, locale)
            yield taken.listening()
            if taken.accepts_digits:
                yield from (taken.exactly(n) for n in range(taken.min_digits, taken.max_digits + 1))

    def state(self, name: str) -> State:
        for state in self.states:
            if state.name == name:
                return state
        raise LookupError(f"workflow {self.name!r} has no state {name!r}")


@dataclass(frozen=True)
class DialogEvent:
    """Something the dialog did that the session around it may act on.

    Names: "not_understood" {reason}, "rejected" {reason}, plus the workflow's own (for
    the pick dialog see `voice.dialog.pick`).
    """

    name: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """What to say: `text` (for TTS and the transcript), the `state` the dialog is in, and
    `display`, the values the headset's big-text screen shows."""

    text: str
    state: str
    display: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """The dialog's answer to one utterance.

    `accepted`: the utterance was taken (understood and in the grammar); False means
    nothing was applied. `prompt` is None only once the dialog has ended.
    """

    prompt: Prompt | None
    accepted: bool
    events: tuple[DialogEvent, ...] = ()
    ended: bool = False


@dataclass(frozen=True)
class Reply:
    """What a handler decided: the state to go to (None: stay), sentences to say before
    that state's instruction, and events."""

    to: str | None = None
    say: tuple[str, ...] = ()
    events: tuple[DialogEvent, ...] = ()


Handler = Callable[[tuple[str, ...]], Reply]


class Dialog:
    """Base of every headset dialog; subclasses set `workflow` and write the handlers.

    Subclasses provide `params()` (the values prompts are filled with) and handlers
    ``def name(self, tokens: tuple[str, ...]) -> Reply``. Handlers call the warehouse first
    and change the dialog's own fields only after it succeeded.
    """

    workflow: ClassVar[Workflow]
    initial: ClassVar[str]
    work_changing: ClassVar[frozenset[str]] = frozenset()  # words that need more evidence

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = getattr(cls, "workflow", None)
        if table is None:
            return
        for state in table.states:
            for name in state.handlers():
                if not callable(getattr(cls, name, None)):
                    raise TypeError(
                        f"{cls.__name__}: state {state.name!r} names no handler {name!r}"
                    )

    def __init__(self, locale: str = "en-US", min_confidence: float = 0.5) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence {min_confidence} is outside 0..1")
        self.locale = locale
        self.min_confidence = min_confidence
        self.prompts: Prompts = load_prompts(self.workflow.name, locale)
        self.state = self.workflow.state(self.initial)
        self._grammars: dict[str, Grammar] = {}
        self._lock = threading.RLock()

    # -- what the session calls --------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.state.final

    def grammar(self) -> Grammar:
        """What the current state listens for (give it to the recogniser)."""
        state = self.state
        if state.name not in self._grammars:
            self._grammars[state.name] = self.workflow.grammar(state, self.locale)
        return self._grammars[state.name]

    def hear(self, tokens: Iterable[str], confidence: float, accepted: bool) -> Turn:
        """Handle one final utterance: the recogniser's canonical tokens, its confidence
        (0..1) and whether it accepted the utterance (in grammar, above its own threshold)."""
        tokens = tuple(tokens)
        with self._lock:
            if self.ended:
                return Turn(None, accepted=False, ended=True)
            reason = self._refusal(tokens, confidence, accepted)
            if reason:
                log.debug("not understood (%s): %s in %s", reason, tokens, self.state.name)
                lead = self.say("not_understood")
                event = DialogEvent("not_understood", {"reason": reason, "tokens": tokens})
                return self._turn(Reply(say=(lead,), events=(event,)), accepted=False)
            handler = self._handler(tokens)
            try:
                reply = handler(tokens)
            except WorkRejected as exc:
                reply = self.refused(exc)
            return self._turn(reply, accepted=True)

    def hear_text(self, text: str) -> Turn:
        """A typed ``say`` frame: handled exactly like a recognised, confident utterance
        (text that is no word of the locale is not understood, like speech outside the
        grammar)."""
        return self.hear(tokens_from_text(text, self.grammar().vocabulary), 1.0, True)

    def answer_complete(self, tokens: tuple[str, ...]) -> bool:
        """Whether `tokens`, heard so far, are a whole answer: a command is, a digit string
        once it has the digits this state expects. Listening ends a whole answer after a
        short pause and waits longer for the rest of a partial one."""
        with self._lock:
            if not tokens:
                return False
            return tokens[0] not in DIGITS or len(tokens) >= self.expected_digits()

    def expected_answer(self) -> tuple[str, ...] | None:
        """The very answer the dialog is waiting for, when the workflow knows it (a line's
        check digits, its quantity); None in states where any answer may come."""
        return None

    def expects(self, tokens: tuple[str, ...]) -> bool:
        """Whether `tokens` are the answer the dialog is waiting for (`expected_answer`).
        Listening ends such a reading after the short pause even when the engines are
        unsure of it: the start of a longer answer misread is almost never exactly the
        right one."""
        expected = self.expected_answer()
        return expected is not None and tuple(tokens) == expected

    def expected_digits(self) -> int:
        """How many digits a whole answer in this state has (workflows that know the line
        in hand say exactly; this is the least the grammar takes)."""
        return self.grammar().min_digits

    def answer_grammar(self) -> Grammar:
        """How to read a digit answer known to be whole: the state's grammar, narrowed by
        workflows to digits of the line's own count where only that many can be right (a
        wrong reading of that length is refused like any wrong digits)."""
        return self.grammar()

    def repeat(self) -> Prompt:
        """The current state's instruction again ("say again", or after a reconnect)."""
        with self._lock:
            return self._prompt(())

    # -- for handlers ------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The values prompts and the display are filled with."""
        return {}

    def say(self, key: str, **extra: Any) -> str:
        """Render prompt `key` now, with the dialog's params and `extra`."""
        return self.prompts.render(key, {**self.params(), **extra})

    def refused(self, exc: WorkRejected) -> Reply:
        """What a refusal from the warehouse says: its reason, and a "rejected" event. The
        engine answers with it; a handler that recovers from a refusal may too."""
        log.info("rejected in %s: %s", self.state.name, exc.reason)
        event = DialogEvent("rejected", {"reason": exc.reason, "message": str(exc)})
        return Reply(say=(self.rejection(exc.reason),), events=(event,))

    def rejection(self, reason: str) -> str:
        template = self.prompts.reasons.get(reason)
        if template is None:
            return self.say("rejected")
        return self.prompts.fill(template, self.params())

    def help(self, tokens: tuple[str, ...] = ()) -> Reply:
        """Built-in handler: what this state wants, and the words it listens for."""
        grammar = self.grammar()
        words = self.prompts.list_separator.join(
            grammar.vocabulary.spoken(t) for t in grammar.commands if t != "help"
        )
        text = self.prompts.help.get(self.state.name, "")
        return Reply(
            say=(self.prompts.fill(text, self.params()), self.say("help_words", words=words))
        )

    def again(self, tokens: tuple[str, ...] = ()) -> Reply:
        """Built-in handler: say the instruction again, change nothing."""
        return Reply()

    def go(self, state: str) -> None:
        """Enter `state` without a turn (restoring a snapshot)."""
        self.state = self.workflow.state(state)

    # -- engine ------------------------------------------------------------------------

    def _refusal(self, tokens: tuple[str, ...], confidence: float, accepted: bool) -> str:
        if not accepted:
            return "not_accepted"
        if confidence < self.min_confidence:
            return "low_confidence"
        changes_work = tokens[:1] and tokens[0] in self.work_changing
        if changes_work and confidence < max(self.min_confidence, WORK_CHANGING_CONFIDENCE):
            return "low_confidence"
        if not self.grammar().accepts(tokens):
            return "not_in_grammar"
        return ""

    def _handler(self, tokens: tuple[str, ...]) -> Handler:
        state = self.state
        name = state.on_digits if tokens[0] in DIGITS else state.words[tokens[0]]
        assert name is not None  # the grammar let only this state's words through
        handler: Handler = getattr(self, name)
        return handler

    def _turn(self, reply: Reply, accepted: bool) -> Turn:
        if reply.to is not None:
            self.state = self.workflow.state(reply.to)
        prompt = self._prompt(reply.say)
        return Turn(prompt, accepted=accepted, events=reply.events, ended=self.ended)

    def _prompt(self, lead: tuple[str, ...]) -> Prompt:
        params = self.params()
        instruction = self.prompts.render(self.state.prompt, params)
        display = {
            key: params[key] for key in self.state.display if params.get(key) not in (None, "")
        }
        return Prompt(self.prompts.join([*lead, instruction]), self.state.name, display)
