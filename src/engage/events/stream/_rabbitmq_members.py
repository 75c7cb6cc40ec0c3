"""Which worker should consume which partition: the live workers, sorted, take the partitions round robin.

Each consuming worker renews its own row of `leases` (`stream-worker:<holder>`) every few seconds; a row
not renewed for `LEASE_SECONDS` is a worker gone. The assignment only says who *should* consume: RabbitMQ's
single-active-consumer queues still guarantee that one consumer at a time takes a partition, in order, so
workers that briefly disagree (one saw a new member, the other not yet) cost balance, never order.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from engage.events.stream._rabbitmq_relay import LEASE_SECONDS, LeaseHolder, leases, new_holder
from engage.store.database import Database

__all__ = ["Membership", "assigned"]

PREFIX = "stream-worker:"


def assigned(partitions: int, members: list[str], member: str) -> set[int]:
    """The partitions `member` should consume among `members` (all of them when it is not listed)."""
    if member not in members:
        return set(range(partitions))
    index, count = sorted(members).index(member), len(members)
    return {partition for partition in range(partitions) if partition % count == index}


class Membership:
    """This worker's place among the stream's consumers."""

    def __init__(self, database: Database, seconds: float = LEASE_SECONDS):
        self.database = database
        self.holder = new_holder()
        self.lease = LeaseHolder(database, seconds=seconds, name=PREFIX + self.holder, holder=self.holder)

    def renew(self) -> list[str]:
        """Renew this worker's row, forget the expired rows, and return the live workers, sorted."""
        self.lease.acquire()
        now = self.lease.now()
        ours = leases.c.name.startswith(PREFIX, autoescape=True)
        with self.database.write() as connection:
            connection.execute(delete(leases).where(ours, leases.c.expires_at < now))
            members = connection.execute(select(leases.c.holder).where(ours)).scalars().all()
        return sorted(members)

    def leave(self) -> None:
        """Hand this worker's partitions over at once instead of after its row expires."""
        self.lease.release()
