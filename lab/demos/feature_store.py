"""Demo ``feature-store`` (C62): a point-in-time join against the naive latest join, in a real Feast store.

Generates a seeded event history (specimens measured while young, asked about, labelled days later when the
lab also records the adult), writes it as Feast's offline store in the demo's state and applies the feature
view. Shows one specimen's timeline, then its row in the point-in-time training set (Feast's
``get_historical_features``) and in the naive one (latest values), trains the project's Pipeline on each and
scores both offline (their own test rows) and online (the features as they were when the prediction was asked
for). Ends by materializing the online store and reading two open specimens with their measured-at times.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipelines.data import build_raw_frame
from pipelines.feature_history import ASKED_AT, ENTITY_KEY, EVENT_TIME, LABELLED_AT, generate_history
from pipelines.feature_leakage import compare_joins, feast_training_sets
from pipelines.feature_store import FeatureRepo, apply, materialize, online, write_history

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

SPECIMENS, SEED = 400, 0  # seed 0: naive 0.991 offline, 0.880 online (docs/feature-leakage-study.md)


def _when(stamp: datetime) -> str:
    return f"{stamp:%m-%d %H:%M}"


def run(n: Narrator, ctx: LabContext) -> None:
    n.title("Feature store: a point-in-time join against the naive latest join (Feast)", "C62")
    cfg, names = ctx.params.dataset, ctx.params.dataset.feature_names
    repo = FeatureRepo(ctx.settings.feature_store_dir)

    n.step(f"A seeded event history of {SPECIMENS} specimens, written as Feast's offline store")
    history = generate_history(build_raw_frame(cfg, ctx.params.ingest), cfg, specimens=SPECIMENS, seed=SEED)
    write_history(repo, history)
    store = apply(repo, cfg)
    n.say(
        f"{len(history.measurements)} measurements, {len(history.labels)} labels, {len(history.open_ids)} specimens "
        f"still open; feature view applied in {repo.root}"
    )

    label = history.labels.iloc[0]
    sid = str(label[ENTITY_KEY])
    asked, labelled = label[ASKED_AT], label[LABELLED_AT]
    n.step(f"One specimen's timeline: {sid}, a {label[cfg.target]}")
    rows = []
    for _, m in history.measurements[history.measurements[ENTITY_KEY] == sid].iterrows():
        kind = "labelled: lab record" if m[EVENT_TIME] == labelled else "measured"
        rows.append((_when(m[EVENT_TIME]), kind, *(f"{m[f]:.1f}" for f in names)))
    rows.insert(-1, (_when(asked), "asked for a prediction", *("" for _ in names)))
    n.table(f"{sid} over time (UTC)", ["when", "event", *names], rows)
    n.why("the lab's record is written days after the question: nobody had those values when it was asked")

    n.step("Two training sets of the same labels: Feast's point-in-time join and the naive latest join")
    pit, naive = feast_training_sets(store, history, cfg)
    n.table(
        f"{sid} as each join gives it",
        ["training set", *names],
        [
            ("point in time (Feast)", *(f"{pit.loc[0, f]:.1f}" for f in names)),
            ("naive (latest values)", *(f"{naive.loc[0, f]:.1f}" for f in names)),
        ],
    )
    changed = int((pit[names] != naive[names]).any(axis=1).sum())
    n.say(f"{changed} of {len(pit)} naive rows hold values recorded after the prediction moment")

    n.step("Train the project's Pipeline on each (one seeded split of specimens); score offline and online")
    result = compare_joins(pit, naive, ctx.params, seed=SEED)
    pit_scores, naive_scores = result.point_in_time, result.naive
    n.table(
        f"{result.train_specimens} training and {result.test_specimens} test specimens",
        ["training set", "offline accuracy", "online accuracy"],
        [
            ("point in time (Feast)", f"{pit_scores.offline:.3f}", f"{pit_scores.online:.3f}"),
            ("naive (latest values)", f"{naive_scores.offline:.3f}", f"{naive_scores.online:.3f}"),
        ],
    )
    (n.ok if naive_scores.offline > naive_scores.online else n.bad)(
        f"naive model: offline {naive_scores.offline:.3f}, online {naive_scores.online:.3f}: "
        f"looks better than it serves by {naive_scores.gap:.3f}"
    )
    (n.ok if pit_scores.online >= naive_scores.online else n.bad)(
        f"point-in-time model: online {pit_scores.online:.3f} against the naive model's {naive_scores.online:.3f}; "
        f"its offline figure is its online one ({pit_scores.offline:.3f})"
    )
    n.why(
        "offline = the test rows of the model's own training set; online = the same specimens' features as the "
        "online store held them when the prediction was asked for. Over 20 seeds: docs/feature-leakage-study.md"
    )

    n.step("Materialize the online store and read two open specimens, as serving by id would")
    now = datetime.now(UTC)
    materialize(store, now)
    for row in online(store, history.open_ids[:2], cfg):
        if row.values is None or row.measured_at is None:
            n.bad(f"{row.entity_id}: not in the online store")
            continue
        hours = (now - row.measured_at).total_seconds() / 3600
        values = ", ".join(f"{k} {v:.1f}" for k, v in row.values.items())
        n.ok(f"{row.entity_id}: {values}; measured at {_when(row.measured_at)} UTC, {hours:.0f} h ago")
    n.code("pipelines/feature_store.py", "pipelines/feature_leakage.py", "pipelines/feature_history.py")
