"""Write the packaged graph sample deepzoo/samples/graph/karate/ (edges.csv, labels.csv).

Zachary's karate club (W. W. Zachary, "An Information Flow Model for Conflict and Fission in Small Groups",
J. Anthropological Research 33, 1977): 34 members, 78 friendships; each member's label is the club they
joined after the split ("Mr. Hi" or "Officer"), as recorded in networkx's ``karate_club_graph``. Node ids
are the members' numbers 0-33. There are no node features (gcn-graph then uses one-hot ids).

    python scripts/make_graph_sample.py          # needs networkx (pip install networkx)
"""

import csv
from pathlib import Path

import networkx as nx

out = Path(__file__).resolve().parent.parent / "deepzoo" / "samples" / "graph" / "karate"
out.mkdir(parents=True, exist_ok=True)
g = nx.karate_club_graph()
with open(out / "edges.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["source", "target"])
    w.writerows(sorted((min(a, b), max(a, b)) for a, b in g.edges()))
with open(out / "labels.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["node", "label"])
    w.writerows((n, g.nodes[n]["club"]) for n in sorted(g.nodes))
print(f"wrote {out}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges")
