"""The run benchmark's two shapes in LangGraph, with a fake model that answers in 50 ms
(or at once): a 10-ary tree (11,111 node executions, 10,000 of them model calls, folded
once at the end: LangGraph's supersteps have no per-parent fold, so this is the closest
shape) and a flat 10,000-way fan-out folded by one node. The critical path is the
latency alone (5 and 2 calls). Prints makespan / critical path and the
per-node bookkeeping, like `cargo bench --bench run`.

Run through `benches/peers/run.sh`, which installs LangGraph into a local virtualenv
first. Never run in CI.
"""

import asyncio
import operator
import sys
import time
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send

LATENCY = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05


async def fake_model(text: str) -> str:
    if LATENCY:
        await asyncio.sleep(LATENCY)
    return f"done: {text[:20]}"


class State(TypedDict, total=False):
    items: list
    results: Annotated[list, operator.add]
    summary: str


class Branch(TypedDict, total=False):
    path: str
    depth: int


def flat_graph(n: int):
    graph = StateGraph(State)

    async def leaf(state: Branch):
        return {"results": [await fake_model(state["path"])]}

    async def fold(state: State):
        return {"summary": await fake_model(" ".join(state["results"]))}

    graph.add_node("leaf", leaf)
    graph.add_node("fold", fold)
    graph.add_conditional_edges(START, lambda s: [Send("leaf", {"path": f"i{i}"}) for i in range(n)], ["leaf"])
    graph.add_edge("leaf", "fold")
    graph.add_edge("fold", END)
    return graph.compile()


def tree_graph(width: int, depth: int):
    """Each branch fans out to `width` branches until `depth`; leaves answer; one
    deferred fold runs once every branch is done."""
    graph = StateGraph(State)

    async def expand(state: Branch):
        if state["depth"] == depth:
            return {"results": [await fake_model(state["path"])]}
        return Command(goto=[
            Send("expand", {"path": f"{state['path']}/{i}", "depth": state["depth"] + 1})
            for i in range(width)
        ])

    async def fold(state: State):
        return {"summary": await fake_model(str(len(state["results"])))}

    graph.add_node("expand", expand)
    graph.add_node("fold", fold, defer=True)
    graph.add_conditional_edges(START, lambda s: [Send("expand", {"path": "r", "depth": 1})], ["expand"])
    graph.add_edge("expand", "fold")
    graph.add_edge("fold", END)
    return graph.compile()


async def main():
    for name, graph, calls, critical_calls in [
        ("tree4", tree_graph(10, 5), 11_111, 5),
        ("flat", flat_graph(10_000), 10_001, 2),
    ]:
        start = time.perf_counter()
        await graph.ainvoke({"items": []}, {"recursion_limit": 100, "max_concurrency": 1_000_000})
        wall = time.perf_counter() - start
        if LATENCY:
            critical = critical_calls * LATENCY
            print(f"langgraph {name}: {calls} calls at {LATENCY * 1000:.0f} ms: makespan {wall * 1000:.1f} ms, "
                  f"critical path {critical * 1000:.1f} ms, ratio {wall / critical:.3f}")
        else:
            print(f"langgraph {name}: {calls} calls at zero latency: {wall * 1000:.1f} ms wall, "
                  f"{wall * 1e6 / calls:.2f} µs bookkeeping per call")


asyncio.run(main())
