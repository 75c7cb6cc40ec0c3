"""One `journeys/*.yml` file → a `Journey` or a `Campaign`, every problem at the line of its key.

By hand, as segments are read: a step is told apart by its one key (`wait`, `send`, …), and a marketer's
mistake deserves a message about that key. Property filters and branch conditions are the segment
language (`engage.segments`), read by the segment parser itself; a branch may also test the trigger's
properties (`trigger:`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from engage.errors import Problem
from engage.events.traits import InvalidTrait, normalize_traits
from engage.journeys.definition import (
    WEEKDAYS,
    Arm,
    Branch,
    Campaign,
    EventMatch,
    Exit,
    Goal,
    Journey,
    Send,
    Split,
    Step,
    Trigger,
    TriggerProperties,
    Update,
    Wait,
    WaitFor,
    compile_steps,
)
from engage.segments._parse import SegmentParser
from engage.segments.definition import Condition, PropertyFilter
from engage.workspace.yaml import KeyPath, YamlFile

__all__ = ["ParsedFile", "parse_file", "STEP_KINDS", "CHANNELS"]

JOURNEY_KEYS = ("name", "description", "trigger", "key", "re_entry", "exit_on", "goal", "steps")
CAMPAIGN_KEYS = (
    "name",
    "description",
    "schedule",
    "timezone",
    "audience",
    "send",
    "rate_limit",
    "holdout",
    "goal",
    "catch_up",
)
STEP_KINDS = ("wait", "wait_for", "branch", "split", "send", "update", "exit")
CHANNELS = ("email", "sms")
_CONDITION_LEAVES = ("trait", "in_segment", "consent", "random_bucket", "trigger")


@dataclass
class ParsedFile:
    """A file's journey or campaign (None with problems), and what it refers to, for the set's checks."""

    doc: YamlFile
    definition: Journey | Campaign | None
    problems: list[Problem]
    templates: list[tuple[str, KeyPath]] = field(default_factory=list)
    segments: list[tuple[str, KeyPath]] = field(default_factory=list)
    events: list[tuple[str, KeyPath]] = field(default_factory=list)
    waits_for: list[tuple[EventMatch, KeyPath]] = field(default_factory=list)


def parse_file(doc: YamlFile) -> ParsedFile:
    parser = _Parser(doc)
    definition = parser.file()
    found = ParsedFile(doc, definition if not parser.problems else None, parser.problems)
    found.templates, found.segments, found.events = parser.templates, parser.segments_named, parser.events
    found.waits_for = parser.waits_for
    return found


class _Parser(SegmentParser):
    leaves = _CONDITION_LEAVES

    def __init__(self, doc: YamlFile):
        super().__init__(doc)
        self.templates: list[tuple[str, KeyPath]] = []
        self.segments_named: list[tuple[str, KeyPath]] = []
        self.events: list[tuple[str, KeyPath]] = []
        self.waits_for: list[tuple[EventMatch, KeyPath]] = []
        self.trigger_is_segment = False

    # -- the file ----------------------------------------------------------------------------------------

    def file(self) -> Journey | Campaign | None:
        data, stem = self.doc.data, PurePosixPath(self.doc.file).stem
        if not isinstance(data, dict):
            what = "an empty file" if data is None else f"a {type(data).__name__}"
            self.error(
                (),
                f"expected a journey (trigger, steps) or a campaign (schedule, audience, send), found {what}",
            )
            return None
        campaign = "schedule" in data
        self.unknown((), data, CAMPAIGN_KEYS if campaign else JOURNEY_KEYS)
        if data.get("name") != stem:
            if "name" not in data:
                self.error((), f"name: required but missing (write `name: {stem}`)")
            else:
                self.error(("name",), f"{data['name']!r} must be the file's name without .yml: '{stem}'")
        description = data.get("description") or ""
        if not isinstance(description, str):
            self.error(("description",), "expected text")
            description = ""
        version = hashlib.sha256(self.doc_text().encode()).hexdigest()[:16]
        if campaign:
            return self.campaign(data, stem, description.strip(), version)
        return self.journey(data, stem, description.strip(), version)

    def doc_text(self) -> str:
        """The document as read (keys and values), for its version: comments and layout do not count."""
        try:
            return json.dumps(self.doc.data, sort_keys=True, default=str)
        except TypeError:  # keys json cannot sort or write: `1:` next to `name:`, or a date
            return json.dumps(_text_keys(self.doc.data), sort_keys=True, default=str)

    def journey(self, data: dict[str, Any], name: str, description: str, version: str) -> Journey | None:
        for key in ("trigger", "steps"):
            if key not in data:
                self.error((), f"{key}: required but missing")
        trigger = self.trigger(data["trigger"], ("trigger",)) if "trigger" in data else None
        key = self.key(data["key"], ("key",)) if "key" in data else None
        re_entry, after = self.re_entry(data.get("re_entry", "never"), ("re_entry",))
        exit_on = self.exit_on(data.get("exit_on", []), ("exit_on",))
        goal = self.goal(data["goal"], ("goal",)) if "goal" in data else None
        steps = self.steps(data["steps"], ("steps",)) if "steps" in data else None
        if trigger is None or steps is None or self.problems:
            return None
        return Journey(
            name, description, trigger, steps, key, re_entry, after, exit_on, goal, version, self.doc.file,
            compile_steps(steps),
        )  # fmt: skip

    def campaign(self, data: dict[str, Any], name: str, description: str, version: str) -> Campaign | None:
        for key in ("audience", "send"):
            if key not in data:
                self.error((), f"{key}: required but missing")
        schedule = data["schedule"]
        if not isinstance(schedule, str) or not self.cron(schedule, ("schedule",)):
            schedule = None
        zone = data.get("timezone")
        if zone is not None and zone != "user" and not _is_zone(zone):
            self.error(
                ("timezone",), f"expected `user` or an IANA time zone such as Europe/Paris, got {zone!r}"
            )
        audience = self.segment_name(data["audience"], ("audience",)) if "audience" in data else None
        send = self.send(data["send"], ("send",)) if "send" in data else None
        rate = self.rate_limit(data["rate_limit"], ("rate_limit",)) if "rate_limit" in data else None
        holdout = self.percent(data.get("holdout", 0), ("holdout",))
        goal = self.goal(data["goal"], ("goal",)) if "goal" in data else None
        catch_up = self.duration(data.get("catch_up", "6h"), ("catch_up",))
        if schedule is None or audience is None or send is None or holdout is None or catch_up is False:
            return None
        if self.problems:
            return None
        return Campaign(
            name, description, schedule, audience, send, zone, rate, holdout, goal, catch_up, version,
            self.doc.file,
        )  # fmt: skip

    # -- pieces ------------------------------------------------------------------------------------------

    def trigger(self, data: Any, path: KeyPath) -> Trigger | None:
        if not isinstance(data, dict) or ("event" in data) == ("segment" in data):
            self.error(
                path, "expected `event: NAME` (with an optional `where:`) or `segment: NAME` (entering it)"
            )
            return None
        self.unknown(path, data, ("event", "where") if "event" in data else ("segment",))
        if "segment" in data:
            self.trigger_is_segment = True
            segment = self.segment_name(data["segment"], (*path, "segment"))
            return Trigger(segment=segment) if segment else None
        event = self.event_name(data["event"], (*path, "event"))
        where = self.where(data.get("where", {}), (*path, "where"))
        return Trigger(event=event, where=where) if event and where is not None else None

    def key(self, data: Any, path: KeyPath) -> str | None:
        if not isinstance(data, str) or not data.startswith("properties.") or data == "properties.":
            self.error(path, f"expected a trigger property, e.g. properties.cart_id, got {data!r}")
            return None
        if self.trigger_is_segment:
            self.error(path, "a segment trigger has no properties to key instances by")
            return None
        return data.removeprefix("properties.")

    def re_entry(
        self, data: Any, path: KeyPath
    ) -> tuple[Literal["never", "always", "after"], timedelta | None]:
        if data in ("never", "always"):
            return data, None
        if isinstance(data, dict) and set(data) == {"after"}:
            window = self.duration(data["after"], (*path, "after"))
            return ("after", window) if window is not False else ("never", None)
        self.error(path, f"expected never, always or `after: DURATION` (e.g. after: 30d), got {data!r}")
        return "never", None

    def exit_on(self, data: Any, path: KeyPath) -> tuple[EventMatch, ...]:
        items = data if isinstance(data, list) else [data]
        found = [
            self.event_match(item, (*path, i) if isinstance(data, list) else path)
            for i, item in enumerate(items)
        ]
        return tuple(match for match in found if match is not None)

    def goal(self, data: Any, path: KeyPath) -> Goal | None:
        if not isinstance(data, dict) or "within" not in data:
            self.error(path, "expected `event: NAME` and `within: DURATION` (with optional where, match)")
            return None
        within = self.duration(data["within"], (*path, "within"))
        match = self.event_match({k: v for k, v in data.items() if k != "within"}, path)
        return Goal(match, within) if match is not None and within is not False else None

    def event_match(self, data: Any, path: KeyPath) -> EventMatch | None:
        if isinstance(data, str):
            data = {"event": data}
        if not isinstance(data, dict) or "event" not in data:
            self.error(path, "expected `event: NAME`, with optional `where:` filters and `match:` properties")
            return None
        self.unknown(path, data, ("event", "where", "match"))
        event = self.event_name(data["event"], (*path, "event"))
        where = self.where(data.get("where", {}), (*path, "where"))
        match = self.match(data.get("match", []), (*path, "match"))
        if event is None or where is None or match is None:
            return None
        return EventMatch(event, where, match)

    def match(self, data: Any, path: KeyPath) -> tuple[tuple[str, str], ...] | None:
        """`[cart_id]` (the same property on both) or `{order_cart: cart_id}` (this event's → trigger's)."""
        if isinstance(data, list) and all(isinstance(item, str) and item for item in data):
            pairs = tuple((item, item) for item in data)
        elif isinstance(data, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            pairs = tuple(data.items())
        else:
            self.error(
                path,
                "expected trigger properties to match: `[cart_id]` or `{its_property: trigger_property}`",
            )
            return None
        if pairs and self.trigger_is_segment:
            self.error(path, "a segment trigger has no properties to match")
            return None
        return pairs

    def steps(self, data: Any, path: KeyPath) -> tuple[Step, ...] | None:
        if not isinstance(data, list):
            self.error(path, f"expected a list of steps ({', '.join(STEP_KINDS)})")
            return None
        steps: list[Step] = []
        for index, item in enumerate(data):
            here = (*path, index)
            if steps and isinstance(steps[-1], Exit):
                self.error(here, "unreachable: it comes after an exit")
            step = self.step(item, here)
            if step is not None:
                steps.append(step)
        return tuple(steps) if len(steps) == len(data) else None

    def step(self, data: Any, path: KeyPath) -> Step | None:
        if data == "exit":
            return Exit()
        if not isinstance(data, dict) or len([key for key in data if key in STEP_KINDS]) != 1:
            self.error(path, f"expected a step: a mapping with one of {', '.join(STEP_KINDS)}")
            return None
        kind = next(key for key in data if key in STEP_KINDS)
        self.unknown(path, data, (kind,))
        value, here = data[kind], (*path, kind)
        reader = getattr(self, f"step_{kind}")
        result: Step | None = reader(value, here)
        return result

    def step_wait(self, data: Any, path: KeyPath) -> Step | None:
        if isinstance(data, dict):
            self.unknown(path, data, ("until", "days"))
            until = self.clock_time(data.get("until"), (*path, "until"))
            days = self.weekdays(data.get("days", list(WEEKDAYS)), (*path, "days"))
            return Wait(until=until, days=days) if until is not None and days is not None else None
        duration = self.duration(data, path)
        return Wait(duration=duration) if duration is not False else None

    def step_wait_for(self, data: Any, path: KeyPath) -> Step | None:
        if not isinstance(data, dict) or "timeout" not in data:
            self.error(path, "expected `event: NAME` and `timeout: DURATION` (with where, match, on_timeout)")
            return None
        timeout = self.duration(data["timeout"], (*path, "timeout"))
        on_timeout = self.steps(data.get("on_timeout", []), (*path, "on_timeout"))
        match = self.event_match({k: v for k, v in data.items() if k not in ("timeout", "on_timeout")}, path)
        if match is None or timeout is False or on_timeout is None:
            return None
        self.waits_for.append((match, path))
        return WaitFor(match, timeout, on_timeout)

    def step_branch(self, data: Any, path: KeyPath) -> Step | None:
        if not isinstance(data, list) or not data:
            self.error(path, "expected a list of `when:` arms (each with its `steps:`), then `otherwise:`")
            return None
        arms: list[tuple[Condition, tuple[Step, ...]]] = []
        otherwise: tuple[Step, ...] = ()
        for index, item in enumerate(data):
            here = (*path, index)
            if isinstance(item, dict) and "otherwise" in item:
                self.unknown(here, item, ("otherwise",))
                if index != len(data) - 1:
                    self.error(here, "unreachable arms follow: `otherwise` must be the last")
                otherwise = self.steps(item["otherwise"], (*here, "otherwise")) or ()
                continue
            if not isinstance(item, dict) or "when" not in item:
                self.error(here, "expected `when: CONDITION` with `steps:`, or `otherwise: STEPS`")
                continue
            self.unknown(here, item, ("when", "steps"))
            condition = self.condition(item["when"], (*here, "when"))
            steps = self.steps(item.get("steps", []), (*here, "steps"))
            if condition is not None and steps is not None:
                arms.append((condition, steps))
        return Branch(tuple(arms), otherwise)

    def step_split(self, data: Any, path: KeyPath) -> Step | None:
        if not isinstance(data, list) or len(data) < 2:
            self.error(path, "expected at least two arms: `{arm: NAME, percent: N, steps: [...]}`")
            return None
        arms: list[Arm] = []
        for index, item in enumerate(data):
            here = (*path, index)
            if not isinstance(item, dict) or "arm" not in item or "percent" not in item:
                self.error(here, "expected `arm: NAME`, `percent: N` and `steps:` (or `holdout: true`)")
                continue
            self.unknown(here, item, ("arm", "percent", "steps", "holdout"))
            percent = self.percent(item["percent"], (*here, "percent"))
            holdout = item.get("holdout", False)
            if not isinstance(holdout, bool):
                self.error((*here, "holdout"), f"expected true or false, got {holdout!r}")
            if holdout and item.get("steps"):
                self.error((*here, "steps"), "a holdout receives nothing: it has no steps")
            steps = self.steps(item.get("steps", []), (*here, "steps"))
            if percent is not None and steps is not None:
                arms.append(Arm(str(item["arm"]), percent, steps, bool(holdout)))
        names = [arm.name for arm in arms]
        if len(set(names)) != len(names):
            self.error(path, f"arm names must be different: {', '.join(names)}")
        if len(arms) == len(data) and abs(sum(arm.percent for arm in arms) - 100) > 1e-9:
            self.error(
                path, f"the arms' percents must add up to 100, not {sum(arm.percent for arm in arms):g}"
            )
        return Split(tuple(arms))

    def step_send(self, data: Any, path: KeyPath) -> Step | None:
        return self.send(data, path)

    def step_update(self, data: Any, path: KeyPath) -> Step | None:
        if not isinstance(data, dict) or not data:
            self.error(path, "expected traits to set: `{trait: value, ...}`")
            return None
        try:
            traits = normalize_traits({str(key): value for key, value in data.items()}, "US")
        except InvalidTrait as exc:
            self.error((*path, exc.field), str(exc))
            return None
        return Update(tuple(traits.items()))

    def step_exit(self, data: Any, path: KeyPath) -> Step | None:
        if data is None:
            return Exit()
        if isinstance(data, dict) and set(data) == {"reason"} and isinstance(data["reason"], str):
            return Exit(data["reason"])
        self.error(path, "expected `exit` alone, or `exit: {reason: TEXT}`")
        return None

    def send(self, data: Any, path: KeyPath) -> Send | None:
        if not isinstance(data, dict) or "channel" not in data or "template" not in data:
            self.error(path, "expected `channel: email|sms` and `template: NAME` (and an optional fallback)")
            return None
        self.unknown(path, data, ("channel", "template", "fallback"))
        channel, template = data["channel"], data["template"]
        if channel not in CHANNELS:
            self.error((*path, "channel"), f"expected email or sms, got {channel!r}")
            return None
        if not isinstance(template, str) or not template:
            self.error((*path, "template"), f"expected a template name, got {template!r}")
            return None
        name = template if "/" in template else f"{channel}/{template}"
        self.templates.append((name, (*path, "template")))
        fallback = None
        if "fallback" in data:
            fallback = self.fallback(data["fallback"], template, channel, (*path, "fallback"))
            if fallback is None:
                return None
        return Send(channel, name, fallback)

    def fallback(self, data: Any, template: str, channel: str, path: KeyPath) -> str | None:
        if isinstance(data, str):
            data = {"channel": data}
        if not isinstance(data, dict) or data.get("channel") not in CHANNELS or data["channel"] == channel:
            other = "sms" if channel == "email" else "email"
            self.error(
                path, f"expected the other channel ({other}), or `{{channel: {other}, template: NAME}}`"
            )
            return None
        self.unknown(path, data, ("channel", "template"))
        stem = data.get("template", template.split("/")[-1])
        name = f"{data['channel']}/{stem}"
        self.templates.append((name, path))
        return name

    # -- conditions: the segment language, and the trigger's properties ----------------------------------

    def leaf_trigger(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        self.unknown(path, data, ("trigger",))
        if self.trigger_is_segment:
            self.error((*path, "trigger"), "a segment trigger has no properties to test")
            return None
        where = self.where(data["trigger"], (*path, "trigger"))
        return TriggerProperties(where) if where is not None else None

    def leaf_in_segment(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        found = super().leaf_in_segment(data, path)
        if found is not None:
            self.segments_named.append((data["in_segment"].strip(), (*path, "in_segment")))
        return found

    # -- values ------------------------------------------------------------------------------------------

    def event_name(self, data: Any, path: KeyPath) -> str | None:
        if not isinstance(data, str) or not data.strip():
            self.error(path, f"expected an event name, e.g. OrderCompleted, got {data!r}")
            return None
        self.events.append((data.strip(), path))
        return data.strip()

    def segment_name(self, data: Any, path: KeyPath) -> str | None:
        if not isinstance(data, str) or not data.strip():
            self.error(path, f"expected a segment's name, got {data!r}")
            return None
        self.segments_named.append((data.strip(), path))
        return data.strip()

    def percent(self, data: Any, path: KeyPath) -> float | None:
        if isinstance(data, bool) or not isinstance(data, int | float) or not 0 <= data <= 100:
            self.error(path, f"expected a percentage from 0 to 100, got {data!r}")
            return None
        return float(data)

    def clock_time(self, data: Any, path: KeyPath) -> time | None:
        if isinstance(data, int) and 0 <= data < 24 * 60:  # YAML 1.1 reads 10:00 as minutes
            return time(data // 60, data % 60)
        try:
            return time.fromisoformat(str(data))
        except ValueError:
            self.error(path, f'expected a local time such as "10:00", got {data!r}')
            return None

    def weekdays(self, data: Any, path: KeyPath) -> tuple[int, ...] | None:
        if (
            not isinstance(data, list)
            or not data
            or not all(isinstance(d, str) and d.lower() in WEEKDAYS for d in data)
        ):
            self.error(path, f"expected a list of weekdays from {', '.join(WEEKDAYS)}, got {data!r}")
            return None
        return tuple(sorted({WEEKDAYS.index(day.lower()) for day in data}))

    def rate_limit(self, data: Any, path: KeyPath) -> int | None:
        """Messages a minute: `500` or `500/m`, `10000/h`, `20/s`."""
        per = {"s": 60, "m": 1, "h": 1 / 60}
        if isinstance(data, int) and not isinstance(data, bool) and data > 0:
            return data
        if isinstance(data, str) and "/" in data:
            count, _, unit = data.partition("/")
            if count.strip().isdigit() and unit.strip() in per and int(count) > 0:
                return max(1, round(int(count) * per[unit.strip()]))
        self.error(path, f"expected messages a minute, e.g. 500, 500/m, 10000/h or 20/s, got {data!r}")
        return None

    def cron(self, expression: str, path: KeyPath) -> bool:
        try:
            CronTrigger.from_crontab(expression)
        except ValueError as exc:
            self.error(path, f"not a cron schedule (minute hour day month weekday): {exc}")
            return False
        return True

    def where(self, data: Any, path: KeyPath) -> tuple[PropertyFilter, ...] | None:
        if data is None:
            return ()
        return super().where(data, path)


def _is_zone(name: Any) -> bool:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _text_keys(value: Any) -> Any:
    """`value` with every mapping key as text, so that json can sort and write it."""
    if isinstance(value, dict):
        return {str(key): _text_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_text_keys(item) for item in value]
    return value
