"""The consumer runner: batch in, one transaction per batch, inbox dedupe, offsets after commit, DLQ."""

from shared.consumer.deliveries import Handler
from shared.consumer.lanes import Lane, LaneRunner
from shared.consumer.polling import split_partitions
from shared.consumer.rings import rung
from shared.consumer.runner import ConsumerRunner

__all__ = ["ConsumerRunner", "Handler", "Lane", "LaneRunner", "rung", "split_partitions"]
