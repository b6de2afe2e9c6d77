"""aiokafka corrected where it departs from what Leadflow needs, for every client of the process
(`patch_aiokafka`): metadata requests never create topics, and a consumer commits offsets only
as the group member that applied them."""

from contextvars import ContextVar
from typing import Any

import aiokafka.admin.client
import aiokafka.client
import aiokafka.consumer.consumer
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import UnknownMemberIdError
from aiokafka.protocol.commit import OffsetCommitRequest
from aiokafka.protocol.metadata import MetadataRequest


class MetadataRequestNeverCreating(MetadataRequest):
    """A metadata request that never creates the topics it names.

    aiokafka asks with `allow_auto_topic_creation` true and has no setting for it. A broker
    that honours it (Tansu always creates, with 4 partitions) then creates a topic that any
    consumer or producer asks about just after the broker lost its topics, before
    `create_topics` or the relay's check could make it with its 8 partitions: half the keys
    would go to partitions that are never read again. Topics are made by `create_topics`
    only; a client that asks for a missing one is told so and asks again later.
    """

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None):
        super().__init__(topics, allow_auto_topic_creation=False)


# Who a commit began as (generation, member id): a retry sent as anyone else is refused.
_COMMITTING_AS: ContextVar[tuple[int, str] | None] = ContextVar("committing_as", default=None)


class GroupCoordinatorCommittingAsMember(GroupCoordinator):
    """A group's coordinator that commits offsets only as the member that applied them.

    aiokafka sends a commit even once it has been called out of its group (generation reset,
    as when the broker no longer knows the member) and before it joins again; the commit
    then goes with no generation, which a broker takes from anyone while the group has no
    members. And it retries a commit that met a retriable error as whatever member it is by
    then. After a broker lost everything, offsets in the lost log (the runner commits what it
    applied as it gives its partitions back) became the new group's: it resumed the
    republished log past what it held and skipped what came after. Such a commit now fails
    as the broker answers a stale member's (`CommitFailedError`), as the Java client does: out
    of the group, for an assignment that is no longer the consumer's, or as another member
    than it began as. The offsets are read again after the rejoin, and the inbox drops them.
    A consumer that assigns its partitions itself commits without a generation, as before.
    """

    async def commit_offsets(self, assignment: Any, offsets: Any) -> None:
        began_as = _COMMITTING_AS.set((self.generation, self.member_id))
        try:
            await super().commit_offsets(assignment, offsets)
        finally:
            _COMMITTING_AS.reset(began_as)

    async def _do_commit_offsets(self, assignment: Any, offsets: Any) -> None:
        if offsets and self._subscription.partitions_auto_assigned():
            member = (self.generation, self.member_id)
            if (
                self.generation == OffsetCommitRequest.DEFAULT_GENERATION_ID
                or not assignment.active
                or _COMMITTING_AS.get() not in (None, member)
            ):
                raise UnknownMemberIdError("no longer the member that applied them: offsets not committed")
        await super()._do_commit_offsets(assignment, offsets)


def patch_aiokafka() -> None:
    """Every aiokafka client of this process (consumers, producers, admin) asks this way, and its
    consumers commit this way."""
    aiokafka.client.MetadataRequest = MetadataRequestNeverCreating
    aiokafka.admin.client.MetadataRequest = MetadataRequestNeverCreating
    aiokafka.consumer.consumer.GroupCoordinator = GroupCoordinatorCommittingAsMember
