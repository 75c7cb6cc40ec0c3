"""Segments: who is in an audience, defined by marketers in `segments/NAME.yml`.

This package holds the definition layer: the YAML format, its typed model (`engage.segments.definition`)
and its loading and checking (`engage.segments.loader`, run by `engage check`).

A file holds `name` (the file's name without .yml), an optional `description` and one `condition`:

```yaml
name: high_value
description: Customers with at least $500 of orders in the last 90 days.
condition:
  all:                                  # every condition below; `any:` for at least one
    - trait: email                      # a profile trait and exactly one operator:
      exists: true                      #   eq ne gt gte lt lte in contains exists within
    - trait: created_at
      within: 365d                      # a timestamp trait no older than 365 days
    - performed: OrderCompleted         # an event …
      within: 90d                       # … in the last 90 days (ever when left out)
      where:                            # … whose properties match (`prop: value` means eq)
        currency: USD
        coupon: {exists: false}
      sum: revenue                      # aggregate a property: sum, count (distinct values) or max,
      gte: 500                          #   compared with eq ne gt gte lt lte
    - performed: ProductViewed          # without an aggregate, count events:
      at_least: 2                       #   at_least (default 1), at_most or exactly
      within: 30d
    - not_performed: Unsubscribed       # no such event in the window (never, without `within`)
      within: 30d
    - last_performed: CheckoutStarted   # the latest such event has these properties
      where: {step: {gte: 2}}
    - any:
        - in_segment: email_users       # members of another segment (no cycles)
        - consent: sms                  # subscribed to sms (`subscribed: false` for not subscribed)
    - not:                              # the opposite of one condition
        random_bucket:                  # a stable share of users by hashed user id, for holdouts:
          salt: holdout-2024            #   a new salt reshuffles everyone
          below: 10                     #   percent, 0 to 100
    - not:
        manual: lists/blocked.csv       # user ids from a CSV relative to the workspace, header `user_id`;
                                        #   a new file replaces the list, it does not add to it
```

Durations are a number and a unit (w, d, h, m, s), combined largest first: `45s`, `90m`, `1h`, `30d`,
`2w`, `1d12h`. Every unknown key, bad operator, unreadable duration, unknown `in_segment` target,
`in_segment` cycle and missing CSV is reported as `file:line: key.path: what is wrong`.
"""

from __future__ import annotations

from engage.segments._parse import ParsedSegment, parse_segment
from engage.segments.definition import (
    Aggregate,
    AggregateFunction,
    All,
    AnyOf,
    Channel,
    Comparison,
    Condition,
    Consent,
    CountOp,
    InSegment,
    LastPerformed,
    Manual,
    Not,
    NotPerformed,
    Op,
    Performed,
    PropertyFilter,
    RandomBucket,
    Scalar,
    Segment,
    Trait,
)
from engage.segments.durations import DurationError, format_duration, parse_duration
from engage.segments.loader import SEGMENTS_DIR, check_segment_set, load_segments, read_manual

__all__ = [
    "Segment",
    "Condition",
    "All",
    "AnyOf",
    "Not",
    "Trait",
    "Performed",
    "Aggregate",
    "NotPerformed",
    "LastPerformed",
    "InSegment",
    "Consent",
    "RandomBucket",
    "Manual",
    "Comparison",
    "PropertyFilter",
    "Op",
    "CountOp",
    "AggregateFunction",
    "Channel",
    "Scalar",
    "DurationError",
    "parse_duration",
    "format_duration",
    "ParsedSegment",
    "parse_segment",
    "check_segment_set",
    "load_segments",
    "read_manual",
    "SEGMENTS_DIR",
]
