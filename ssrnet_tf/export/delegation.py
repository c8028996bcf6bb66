"""Which nodes of a ``.tflite`` model the XNNPACK CPU delegate runs."""

from __future__ import annotations

import dataclasses
from typing import List


@dataclasses.dataclass(frozen=True)
class DelegationReport:
    """XNNPACK coverage of a model.

    Attributes:
        total_nodes: Nodes of the model's main graph.
        delegated_nodes: Nodes that XNNPACK took.
        partitions: Delegate partitions (1 = the whole graph in one piece).
        fallback_ops: Op names of the nodes left to the builtin kernels.
    """

    total_nodes: int
    delegated_nodes: int
    partitions: int
    fallback_ops: List[str]

    @property
    def fully_delegated(self) -> bool:
        """Whether every node runs in XNNPACK."""
        return self.delegated_nodes == self.total_nodes

    def summary(self) -> str:
        """One line, e.g. ``97/97 nodes in 1 partition``."""
        text = f"{self.delegated_nodes}/{self.total_nodes} nodes in {self.partitions} partition(s)"
        if self.fallback_ops:
            text += "; fallback: " + ", ".join(sorted(set(self.fallback_ops)))
        return text


def xnnpack_delegation(interpreter) -> DelegationReport:
    """Inspects an interpreter (created with XNNPACK on, tensors allocated).

    The interpreter lists the original nodes first and one ``DELEGATE``
    node per partition after them. A node is delegated when it lies between
    a partition's inputs and outputs, found by walking producers backwards
    from the partition's outputs.

    Args:
        interpreter: A LiteRT/TFLite ``Interpreter`` after
            ``allocate_tensors()``.

    Returns:
        The :class:`DelegationReport`.
    """
    ops = interpreter._get_ops_details()  # pylint: disable=protected-access
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {int(t): op["index"] for op in originals for t in op["outputs"]}
    by_index = {op["index"]: op for op in ops}
    delegated = set()
    for delegate in delegates:
        boundary = {int(t) for t in delegate["inputs"]}
        stack = [int(t) for t in delegate["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer:
                continue
            node = producer[tensor]
            if node in delegated:
                continue
            delegated.add(node)
            stack.extend(int(t) for t in by_index[node]["inputs"] if t >= 0)
    fallback = [op["op_name"] for op in originals if op["index"] not in delegated]
    return DelegationReport(len(originals), len(delegated), len(delegates), fallback)
