"""Input a user can fix, given to `python -m studio` or `python app.py`: one line, exit 2, nothing written.

Each case runs the real command in a subprocess, as a user types it, and checks the whole of
stderr: exactly one `error: ...` line that names the option or bundle field at fault, never a
traceback. Projects come from test_bundle's `populate` (rows and fake media, no model).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_bundle import T0, populate, read_members, state, ticking_clock, write_zip

from engine.weights import REPO_ROOT, TINY_WEIGHTS, WEIGHTS_ENV
from storage import build_storage
from studio import cli
from studio.bundle import export_bundle

BAD_DB_URLS = [
    pytest.param("not a url", id="not-a-url"),
    pytest.param("sqlite:////nonexistent/dir/x.db", id="sqlite-in-missing-folder"),
    pytest.param("postgresql+nosuchdriver://u@h/db", id="unknown-driver"),
    pytest.param(
        "mysql+pymysql://u:secret@h/db",
        id="driver-not-installed",
        marks=pytest.mark.skipif(importlib.util.find_spec("pymysql") is not None, reason="pymysql is installed"),
    ),
]


@dataclass(frozen=True)
class Studio:
    data_dir: Path
    project_id: int
    bundle: Path


@pytest.fixture(scope="module")
def studio_dir(tmp_path_factory) -> Studio:
    """A data directory holding one populated project, and that project exported as a bundle."""
    folder = tmp_path_factory.mktemp("studio")
    store = build_storage(folder / "data", clock=ticking_clock(T0))
    project_id = populate(store, "Harbour")
    bundle = export_bundle(store, project_id, folder / "harbour.zip")
    store.close()
    return Studio(folder / "data", project_id, bundle)


def run_studio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def run_app(*args: str) -> subprocess.CompletedProcess:
    """`python app.py` on the tiny model, so even a mistaken launch is quick; the timeout stops a server."""
    env = {**os.environ, WEIGHTS_ENV: str(TINY_WEIGHTS)}
    return subprocess.run(
        [sys.executable, "app.py", "--device", "cpu", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 2 and stderr exactly one `error: ...` line naming each of `names`; returns that line."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def snapshot_of(data_dir: Path):
    """Row counts and files of a data directory, to show a refused command changed nothing."""
    store = build_storage(data_dir)
    try:
        return state(store)
    finally:
        store.close()


# --- 1. a bundle.json nested too deep --------------------------------------------------------------


def deep_bundle(good: Path, path: Path, depth: int) -> Path:
    """The good bundle with its first render's settings nested `depth` objects deep."""
    members, manifest = read_members(good)
    manifest["project"]["renders"][0]["settings"] = "@DEEP@"
    nested = '{"a": ' * depth + "1" + "}" * depth
    text = json.dumps(manifest).replace('"@DEEP@"', nested)
    return write_zip(path, [*members.items(), ("bundle.json", text)])


@pytest.mark.parametrize("depth", [100, 980])  # 980: within the parser's reach, beyond the database's
def test_a_bundle_nested_too_deep_is_refused_before_anything_is_written(studio_dir, tmp_path, depth):
    bundle = deep_bundle(studio_dir.bundle, tmp_path / "deep.zip", depth)
    target = tmp_path / "target"
    build_storage(target).close()
    before = snapshot_of(target)

    result = run_studio("--data-dir", str(target), "import", str(bundle))

    line = assert_one_line_error(result, "bundle.json project.renders[0].settings", "64")
    assert "deeper" in line
    assert snapshot_of(target) == before


# --- 2. --out that cannot be written ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "out"),
    [
        pytest.param("bundle", "afile/out.zip", id="bundle-under-a-file"),
        pytest.param("pdf", "afile/sub/board.pdf", id="pdf-under-a-file"),
        pytest.param("bundle", "folder", id="bundle-onto-a-folder"),
        pytest.param("pdf", "folder", id="pdf-onto-a-folder"),
        pytest.param("shots", "afile", id="shots-onto-a-file"),
        pytest.param("bundle", "/proc/holocine-test.zip", id="bundle-into-proc"),
    ],
)
def test_an_out_path_that_cannot_be_written_is_refused(studio_dir, tmp_path, format, out):
    if out.startswith("/proc") and not Path("/proc/self").exists():
        pytest.skip("needs Linux's /proc")
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "folder").mkdir()
    before = snapshot_of(studio_dir.data_dir)

    result = run_studio(
        "--data-dir", str(studio_dir.data_dir), "export", "Harbour", "--format", format, "--out", str(tmp_path / out)
    )

    assert_one_line_error(result, "--out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["afile", "folder"]
    assert (tmp_path / "afile").read_text() == "mine"
    assert not Path("/proc/holocine-test.zip").exists()
    assert snapshot_of(studio_dir.data_dir) == before


# --- 3. --data-dir that cannot be created ---------------------------------------------------------


@pytest.mark.parametrize("under", ["afile/data", "afile"], ids=["under-a-file", "is-a-file"])
def test_a_data_dir_that_cannot_be_created_is_refused_by_the_cli(studio_dir, tmp_path, under):
    (tmp_path / "afile").write_text("mine")

    result = run_studio("--data-dir", str(tmp_path / under), "import", str(studio_dir.bundle))

    assert_one_line_error(result, "--data-dir")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"] and (tmp_path / "afile").read_text() == "mine"


def test_a_data_dir_that_cannot_be_created_is_refused_by_the_app(tmp_path):
    (tmp_path / "afile").write_text("mine")

    result = run_app("--data-dir", str(tmp_path / "afile" / "data"))

    assert_one_line_error(result, "--data-dir")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


# --- 4. --db-url that is not usable ---------------------------------------------------------------


@pytest.mark.parametrize("url", BAD_DB_URLS)
def test_a_bad_db_url_is_refused_by_the_cli(studio_dir, tmp_path, url):
    data = tmp_path / "data"

    result = run_studio("--data-dir", str(data), "--db-url", url, "import", str(studio_dir.bundle))

    line = assert_one_line_error(result, "--db-url")
    assert "secret" not in line  # a password in the URL is never echoed
    assert not data.exists()


@pytest.mark.parametrize("url", BAD_DB_URLS)
def test_a_bad_db_url_is_refused_by_the_app_before_the_model_loads(tmp_path, url):
    data = tmp_path / "data"

    result = run_app("--data-dir", str(data), "--db-url", url)

    line = assert_one_line_error(result, "--db-url")
    assert "secret" not in line
    assert not data.exists()


# --- 5. --data-dir and --db-url after the subcommand ------------------------------------------------


def test_global_options_are_read_before_and_after_the_subcommand():
    """Either position works; given in both, the subcommand's value wins; left out, they are None."""
    cases = [
        (["--data-dir", "A", "import", "b.zip"], ("A", None)),
        (["import", "b.zip", "--data-dir", "B", "--db-url", "sqlite://"], ("B", "sqlite://")),
        (["--data-dir", "A", "--db-url", "x://", "import", "b.zip", "--data-dir", "B"], ("B", "x://")),
        (["export", "1", "--data-dir", "B", "--format", "pdf", "--out", "x.pdf"], ("B", None)),
        (["import", "b.zip"], (None, None)),
    ]
    for argv, expected in cases:
        args = cli.build_parser().parse_args(argv)
        assert (args.data_dir, args.db_url) == expected, argv


def test_an_export_with_options_after_the_subcommand_runs(studio_dir, tmp_path):
    out = tmp_path / "harbour.zip"
    elsewhere = tmp_path / "elsewhere"

    result = run_studio(
        "--data-dir", str(elsewhere), "export", str(studio_dir.project_id), "--data-dir", str(studio_dir.data_dir),
        "--format", "bundle", "--out", str(out),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert out.is_file() and not elsewhere.exists()  # the value after the subcommand wins


def test_an_import_with_a_db_url_after_the_subcommand_uses_it(studio_dir, tmp_path):
    data, database = tmp_path / "data", tmp_path / "other.db"

    result = run_studio("import", str(studio_dir.bundle), "--data-dir", str(data), "--db-url", f"sqlite:///{database}")

    assert result.returncode == 0, result.stderr
    store = build_storage(data, database_url=f"sqlite:///{database}")
    assert [p.name for p in store.projects.list_all()] == ["Harbour"]
    store.close()
    assert not (data / "studio.db").exists()


# --- an OSError is one line; a programming error is not hidden -------------------------------------


def test_an_os_error_is_one_line_and_a_bug_still_raises(studio_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.zip"
    argv = ["--data-dir", str(studio_dir.data_dir), "export", "Harbour", "--format", "bundle", "--out", str(out)]

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(cli, "export_bundle", disk_full)
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "No space left on device" in lines[0]

    def bug(*_args, **_kwargs):
        raise TypeError("a programming error")

    monkeypatch.setattr(cli, "export_bundle", bug)
    with pytest.raises(TypeError, match="a programming error"):
        cli.main(argv)
