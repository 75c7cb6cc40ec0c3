"""Several workers share the due steps without sending anything twice, and a worker killed in the middle
of a batch loses nothing: the next one runs what it left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from engage.bootstrap import Engage, bootstrap
from engage.connectors.outbox import read_outbox
from engage.store import utcnow
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, track
from tests.journeys.conftest import Shop, customer, open_shop

JOURNEY = """
trigger:
  event: UserSignedUp
steps:
  - wait: 1h
  - send: {channel: email, template: welcome}
  - update: {welcomed: true}
"""


def sign_up(shop: Shop, count: int) -> list[str]:
    users = [f"c{n:05d}" for n in range(count)]
    for first in range(0, count, 500):
        chunk = users[first : first + 500]
        shop.send(*[customer(user) for user in chunk], *[track(user, "UserSignedUp") for user in chunk])
    return users


def assert_each_sent_once(shop: Shop, users: list[str]) -> None:
    instances = shop.instances("onboarding")
    assert Counter(i["status"] for i in instances) == {"completed": len(users)}
    messages = shop.messages()
    assert sorted(m.address for m in messages) == sorted(f"{user}@example.com" for user in users)
    with shop.engage.database.read() as connection:
        sends = connection.exec_driver_sql(
            "SELECT count(*), count(DISTINCT instance_id) FROM journey_steps WHERE kind = 'send'"
        ).one()
    assert tuple(sends) == (len(users), len(users))
    steps = Counter(
        (e.properties["instance"], e.properties["step"]) for e in shop.events("JourneyStepCompleted")
    )
    assert set(steps.values()) == {1} and len(steps) == 3 * len(users)


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_the_work_and_send_each_message_once(
    make_workspace: MakeWorkspace, postgres_url: str, clock: Clock
) -> None:
    shop = open_shop(make_workspace, postgres_url, clock)
    second = bootstrap(Workspace.load(shop.root), clock=clock)
    try:
        shop.journey("onboarding", JOURNEY)
        users = sign_up(shop, 600)
        clock.advance(hours=1)
        ran: dict[str, int] = {}

        def work(name: str, engage: Engage) -> None:
            ran[name] = engage.journeys.tick()
            engage.messaging.dispatch()

        threads = [
            threading.Thread(target=work, args=(name, engage))
            for name, engage in (("first", shop.engage), ("second", second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert ran["first"] + ran["second"] == 600 and ran["first"] and ran["second"]
        shop.run()
        shop.engage.messaging.dispatch()
        assert_each_sent_once(shop, users)
        outbox = Counter(entry.to for entry in read_outbox(shop.root / "var" / "outbox"))
        assert len(outbox) == 600 and set(outbox.values()) == {1}
    finally:
        second.close()
        shop.engage.close()


WORKER = """
import sys
from pathlib import Path
from engage.bootstrap import Engage, bootstrap
from engage.workspace import Workspace

engage = bootstrap(Workspace.load(Path(sys.argv[1])), migrate=False)
print("ready", flush=True)
while engage.journeys.runner.run_once(limit=100):
    pass
"""


def test_a_worker_killed_mid_batch_leaves_nothing_lost_or_doubled(any_shop: Shop, tmp_path: Path) -> None:
    shop = any_shop
    shop.journey("onboarding", JOURNEY)
    shop.clock.now = utcnow().replace(microsecond=0) - timedelta(hours=2)
    users = sign_up(shop, 2000)  # their waits ended an hour ago, by the real clock
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    worker = subprocess.Popen(
        [sys.executable, str(script), str(shop.root)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = shop.engage.database.fetch(
                "SELECT count(*) FROM journey_instances WHERE status = 'completed'", {}
            )[0][0]
            if done:
                break
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert 0 < done < len(users), "the worker was to be killed while it worked"
    shop.clock.now = utcnow()
    shop.run()  # the next worker
    assert_each_sent_once(shop, users)
