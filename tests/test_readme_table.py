"""Every `fedseg ...` command of README.md's CLI table runs here (issue 11, item 7): with
its placeholders filled in, scaled down where needed (`--customers`), every flag the
README shows kept. The Simulation Engine is swapped for the in-process transport (same
wire bytes, same orchestrator, same artifact and reports), so the whole table runs in
the fast suite; the commands that need a live SuperLink are run by tests/test_deploy.py,
and Ray itself by the integration tests (tests/test_readme.py, tests/test_cli_cdnow.py).
A README command added without a run here fails `test_every_table_command_is_run`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.common.artifact import load_artifact, save_artifact
from fedseg.common.playbook import load_playbook
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from fedseg.server.report.markdown import write_report
from fedseg.server.report.page import write_html_report
from tests.helpers import frame_nodes, transport
from tests.vertical_helpers import in_process_vertical

REPO = Path(__file__).resolve().parents[1]

# README table command -> the command run here (placeholders filled in, same flags)
RUN_HERE = {
    "fedseg synth --out DIR [--customers N] [--departments D] [--seed S]":
        "fedseg synth --out demo --customers 1500 --departments 3 --seed 1",
    "fedseg check --schema TOML --data CSV": "fedseg check --schema demo/schema.toml --data demo/dept-1.csv",
    "fedseg check --schema TOML --data CSV --delimiter D --encoding E":
        "fedseg check --schema demo/schema.toml --data demo/dept-1.csv --delimiter , --encoding utf-8",
    "fedseg schema TABLE [--out schema.toml] [--id COLUMN]":
        "fedseg schema demo/dept-1.csv --out proposed.toml --id customer_id",
    "fedseg simulate": "fedseg simulate --customers 4000 --out runs/plain",
    "fedseg simulate --secure": "fedseg simulate --secure --customers 1500 --out runs/secure",
    "fedseg simulate --k 6 --epsilon 1 --delta 1e-6": "fedseg simulate --k 6 --epsilon 1 --delta 1e-6 --out runs/dp",
    "fedseg simulate --dedup [--overlap 0.3]": "fedseg simulate --dedup --overlap 0.3 --customers 1500 --out runs/dedup",
    'fedseg simulate --data pooled.csv --vertical "crm=a,b;shop=c,d" --k 5 [--overlap 0.8] [--secure]':
        'fedseg simulate --data demo/dept-1.csv --schema demo/schema.toml --vertical '
        '"crm=age,income;shop=frequency,monetary;service=tag_tech" --k 3 --overlap 0.8 --secure --out runs/vertical',
    "fedseg assign --model model.json --data CSV --out labels.csv":
        "fedseg assign --model runs/plain/model.json --data demo/dept-1.csv --out labels.csv",
    "fedseg report model.json [--out report.html] [--png report.png]":
        "fedseg report runs/dp/model.json --out dp-report.html",  # --png: tests/test_readme.py (Chromium)
    "fedseg drift old.json new.json": "fedseg drift runs/plain/model.json runs/warm/model.json",
    "fedseg simulate --cdnow [--stores 5] [--k 4]": "fedseg simulate --cdnow --stores 5 --k 4 --out runs/cdnow",
    # in process here (no Ray at all); the address reaching Flower's Ray backend is
    # tests/test_table_once.py::test_ray_address_reaches_the_engine
    "fedseg simulate --ray-address HOST:PORT": "fedseg simulate --ray-address 127.0.0.1:6379 --customers 1500 --out runs/ray",
    "fedseg simulate --as-of YYYY-MM-DD": "fedseg simulate --cdnow --as-of 1998-09-30 --k 3 --out runs/asof",
    "fedseg simulate --warm-start old/model.json":
        "fedseg simulate --warm-start runs/plain/model.json --customers 4000 --out runs/warm",
    "fedseg certs --out DIR": "fedseg certs --out certs",
    "fedseg node-keys --out DIR --name NAME": "fedseg node-keys --out keys --name store-1",
    "fedseg connection --address HOST:PORT --ca ca.crt": "fedseg connection --address 127.0.0.1:9093 --ca certs/ca.crt",
    "fedseg check-node --schema S --node-config C":
        """fedseg check-node --schema demo/schema.toml --node-config 'data-path="demo/dept-1.csv"'""",
    "fedseg label-node --model model.json --node-config C":
        """fedseg label-node --model runs/plain/model.json --node-config """
        """'data-path="demo/dept-1.csv" labels-path="node-labels.csv"'""",
}
# need a live SuperLink: run by tests/test_deploy.py (integration), which spells them out
RUN_BY_DEPLOY = ("fedseg register --keys DIR", "fedseg check-link --superlink HOST:PORT --ca ca.crt [--key KEY]")


def table_commands() -> list[str]:
    """Every backticked `fedseg ...` in the first column of README's CLI table."""
    out = []
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("| `fedseg"):
            first = line.split(" | ")[0]
            out += re.findall(r"`(fedseg[^`]*)`", first)
    return out


def flags(command: str) -> set[str]:
    return set(re.findall(r"--[a-z-]+", command))


def test_every_table_command_is_run():
    listed = table_commands()
    assert sorted(listed) == sorted([*RUN_HERE, *RUN_BY_DEPLOY])
    for readme, here in RUN_HERE.items():  # the README's flags, kept (--png needs Chromium:
        # the README data example runs `fedseg report ... --png` in tests/test_readme.py)
        assert flags(readme) - {"--png"} <= flags(here), (readme, here)
    assert "--png report.png" in (REPO / "tests" / "test_readme.py").read_text()
    deploy = (REPO / "tests" / "test_deploy.py").read_text()
    assert '"register", "--keys"' in deploy and '"check-link", "--superlink"' in deploy and '"--key"' in deploy


def in_process_simulate(frames, schema, config, out_dir, on_event=lambda e: None, num_cpus=None, ray_address=None):
    """`simulations.driver.simulate` without Ray: the same orchestrator over LocalTransport,
    then the artifact and both reports exactly as `server.app.run_segmentation` writes them."""
    from fedseg.common.artifact import load_artifact as load

    nodes = frame_nodes([f[[c for c in f.columns if c in schema.columns]] for f in frames])
    warm = load(config.warm_start) if config.warm_start else None
    result = Orchestrator(config, schema, transport(nodes), list(nodes), on_event, warm=warm).run()
    model = build_artifact(result, config, schema)
    save_artifact(model, Path(out_dir) / "model.json")
    write_report(model, Path(out_dir))
    write_html_report(model, Path(out_dir), load_playbook())
    return model, {"total": 0.0}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Run the table top to bottom in one folder (later commands read earlier outputs)."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("readme")
    mp.chdir(root)
    mp.setenv("FLWR_HOME", str(root / "flwr-home"))
    mp.setattr("fedseg.simulations.driver.simulate", in_process_simulate)
    mp.setattr("fedseg.simulations.vertical_sim.simulate_vertical", in_process_vertical)
    order = ["fedseg synth", "fedseg schema", "fedseg check ", "fedseg simulate", "fedseg simulate --secure", "fedseg simulate --k 6",
             "fedseg simulate --dedup", "fedseg simulate --ray-address", "fedseg simulate --warm-start", "fedseg assign", "fedseg report", "fedseg drift", "fedseg simulate --cdnow",
             "fedseg simulate --as-of", "fedseg certs", "fedseg node-keys", "fedseg connection", "fedseg check-node",
             "fedseg label-node"]
    todo = sorted(RUN_HERE, key=lambda c: next(i for i, p in reversed(list(enumerate(order))) if c.startswith(p)))
    outputs = {}
    for readme in todo:
        done = CliRunner().invoke(cli, shlex.split(RUN_HERE[readme])[1:])
        outputs[readme] = done
        assert done.exit_code == 0, f"{RUN_HERE[readme]}\n{done.output[-3000:]}"
    yield root, outputs
    mp.undo()


def test_table_commands_exit_0_and_write_what_they_say(ran):
    root, _ = ran
    for out in ("plain", "secure", "dp", "cdnow", "asof", "warm"):
        assert {"model.json", "report.md", "report.html"} <= {p.name for p in (root / "runs" / out).iterdir()}
    dp = load_artifact(root / "runs" / "dp" / "model.json")
    assert dp.k <= 6 and dp.privacy["guarantee"]["epsilon"] == 1.0 and dp.selection == []
    assert load_artifact(root / "runs" / "secure" / "model.json").privacy["mode"] == "secure"
    assert load_artifact(root / "runs" / "warm" / "model.json").drift is not None
    dedup = load_artifact(root / "runs" / "dedup" / "model.json")  # 450 of 1500 customers copied to a 2nd node
    assert sum(s.size for s in dedup.segments) == 1500 and dedup.privacy["deduplication"]["shared_customers"] == 450
    assert (root / "dp-report.html").read_text().startswith("<!DOCTYPE html>")
    for labels in ("labels.csv", "node-labels.csv"):
        assert list(pd.read_csv(root / labels).columns) == ["customer_id", "segment", "segment_name"]
    assert (root / "certs" / "ca.crt").exists() and (root / "keys" / "store-1.pub").exists()
    assert "PROPOSED from the data" in (root / "proposed.toml").read_text()


def test_the_vertical_table_command_writes_one_vertical_model(ran):
    from fedseg.common.vertical.model import load_model
    from fedseg.simulations.vertical_split import shared_ids, vertical_split

    root, _ = ran
    model = load_model(root / "runs" / "vertical" / "model.json")
    parties = {"crm": ["age", "income"], "shop": ["frequency", "monetary"], "service": ["tag_tech"]}
    assert model.mode == "vertical" and model.secure and model.k <= 3
    assert {f.name: f.party for f in model.features} == {c: p for p, cols in parties.items() for c in cols}
    frames = vertical_split(pd.read_csv(root / "demo" / "dept-1.csv"), "customer_id", parties, 0.8, 42)
    assert model.shared_customers == sum(s.size for s in model.segments) == len(shared_ids(frames, "customer_id"))
    assert "## shop" in (root / "runs" / "vertical" / "report.md").read_text()
    page = (root / "runs" / "vertical" / "report.html").read_text()  # as the horizontal mode writes it
    assert page.startswith("<!DOCTYPE html>") and all(f'data-party="{p}"' in page for p in parties)
