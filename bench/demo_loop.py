"""What retraining on the demo's live period changed, with everything else held equal.

`engage demo` counts clicks on the lists each model version served, but the lists shown after the
retraining also met shoppers who had meanwhile clicked more (the real-time part of the loop). This script
takes a finished demo workspace and asks both versions for every customer's `for_you` list (5 items) from
the same, final histories, then scores the lists with the demo's own click model (persona and season
interest, new arrivals): the expected click-through of a list, and what the lists hold.

    .venv/bin/python bench/demo_loop.py [var/demo]
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import text

from engage.bootstrap import bootstrap
from engage.demo.live import click_chance
from engage.demo.shoppers import Persona, Season, Shopper
from engage.demo.storefront import is_new
from engage.store.codec import json_value
from engage.workspace import Workspace

N = 5


def main(root: Path) -> None:
    engage = bootstrap(Workspace.load(root), migrate=False)
    recommender, catalog = engage.recommend.recommender, engage.recommend.catalog
    models = root / "var" / "models"
    pointer = models / "CURRENT"
    saved = pointer.read_text()
    versions = sorted(path.name for path in models.iterdir() if path.is_dir())[-2:]
    with engage.database.read() as connection:
        rows = connection.execute(
            text(
                "SELECT user_id, traits, first_seen FROM profiles WHERE user_id IS NOT NULL ORDER BY user_id"
            )
        ).all()
    now = engage.journeys.clock()
    season = Season(start=now.replace(year=now.year - 1))  # the season is on at the end of a demo run
    shoppers = []
    for number, (user_id, traits, _) in enumerate(rows):
        persona = Persona(
            tuple((json_value(traits) or {}).get("persona", "").split("_")), "indifferent", "email"
        )
        shoppers.append((user_id, Shopper(number, persona, "", "", "UTC", None, now, 0.0)))
    print(f"{len(shoppers)} customers of {root}, for_you lists of {N}, scored at {now:%Y-%m-%d %H:%M} UTC")
    print(f"{'version':<24} {'model':<8} {'expected CTR':>12} {'favourite':>10} {'seasonal':>9} {'new':>6}")
    rates = []
    try:
        for version in versions:
            pointer.write_text(saved.replace(saved.strip(), version))
            served = recommender.store.wait()
            assert served is not None and served.version == version
            expected = favourite = seasonal = new = items = 0.0
            for user_id, shopper in shoppers:
                missed = 1.0
                for item in recommender.for_you(user_id, N, channel=None).item_ids:
                    product = catalog[item]
                    missed *= 1 - click_chance(shopper, product, now, season)
                    items += 1
                    favourite += product.category in shopper.persona.categories
                    seasonal += product.category == season.category
                    new += is_new(product, now)
                expected += 1 - missed
            rates.append(expected / len(shoppers))
            print(
                f"{version:<24} {served.manifest['choice']['model']:<8} {expected / len(shoppers):>12.3f} "
                f"{favourite / items:>10.1%} {seasonal / items:>9.1%} {new / items:>6.1%}"
            )
    finally:
        pointer.write_text(saved)
        engage.close()
    if len(rates) == 2:
        print(f"expected click-through, retrained / first model: {rates[1] / rates[0]:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo").resolve())
