"""Hostile submissions against `cnnlab grade` (issue 8): the red team's suite.

Every run is `cnnlab grade` as an instructor types it, in a child process with a temp HOME
(holding a canary file) and a secret environment variable, ``--jobs 2``:

1. baseline: an honest correct and an honest wrong lab 1 submission, built from the master;
2. attacks: the attacks of tests/fixtures/hostile/hostile_attacks.py, four vectorised
   shortcuts and the honest pair (``--memory 2G``);
3. files: malformed notebooks, symlinks, a FIFO and odd file names passed by relative name
   (as `cnnlab grade *.ipynb` would), plus a run of names starting with `-`;
4. bombs: result files and sources that unpack to far more than they weigh, one run each;
5. control: the oracle probes under `--no-sandbox`, where they must find their leak;
6. labs 2 and 3: each lab's honest pair and three attacks.

For each attack row: the right score (never above the honest wrong one for wrong answers;
full marks where the attack leaves correct answers alone); for the runs: the honest rows equal
the baseline, nothing outside the sandbox's scratch changed (submissions, the autograder, the
CSV's folder, HOME, the package and system folders), no process survives, the grader's own
memory stays near its baseline, the secret never appears in any output. An attack that
succeeds keeps its failing test: the failure is the bug report.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import hostile_helpers as hh
import pytest
from assigned import assigned_dist

import cnnlab

LAB = "lab1_convolution"
TIMEOUT = 30  # seconds per submission; honest ones take a few
MEMORY = "2G"  # the attack run's sandbox cap: the 8 GB probes need more, the flood stops at it
MEMORY_SLACK = 200 * 2**20  # the grader may use this much more than on the honest baseline

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "hostile"))
import hostile_attacks as attacks  # noqa: E402
import hostile_cheats as cheats  # noqa: E402
import hostile_files as files  # noqa: E402

ATTACKS = {a.name: a for a in attacks.ATTACKS}


@dataclass
class World:
    """The assigned lab and the instructor's surroundings the attacks aim at."""

    root: Path
    work: Path  # holds dist/; `cnnlab grade` runs here
    lab: hh.Lab
    home: Path
    canary: Path
    secret: str
    env: dict[str, str]
    marker: str


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    hh.require_bwrap()
    root = tmp_path_factory.mktemp("hostile")
    work = root / "work"
    work.mkdir()
    lab = hh.copy_assigned(LAB, assigned_dist(tmp_path_factory), work / "dist")
    home = root / "home"
    home.mkdir()
    canary = home / "canary.txt"
    canary.write_text("canary " + secrets.token_hex(8))
    secret = "hostile-secret-" + secrets.token_hex(12)
    env = dict(os.environ, HOME=str(home), CNNLAB_HOSTILE_SECRET=secret)
    return World(root, work, lab, home, canary, secret, env,
                 "cnnlab-hostile-" + secrets.token_hex(6))


@pytest.fixture(scope="module")
def baseline(world):
    """The honest pair graded alone: the reference for every other run."""
    folder = world.root / "baseline"
    folder.mkdir()
    correct = hh.write(folder / "honest_correct.ipynb", world.lab.correct_notebook)
    wrong = hh.write(folder / "honest_wrong.ipynb", world.lab.wrong_notebook)
    run = hh.grade([str(correct), str(wrong)], folder / "grades.csv", world.work, world.env,
                   LAB, TIMEOUT)
    header = run.raw_rows[0] if run.raw_rows else []
    questions = header[1:header.index("total")] if "total" in header else []
    return {"run": run, "questions": questions,
            "correct": run.rows.get(str(correct)), "wrong": run.rows.get(str(wrong))}


def test_baseline_scores_correct_full_and_wrong_low(baseline):
    run = baseline["run"]
    assert run.raw_rows and run.raw_rows[0][0] == "file", run.stderr[-2000:]
    assert run.raw_rows[0][-4:] == ["total", "possible", "status", "reason"]
    correct, wrong = baseline["correct"], baseline["wrong"]
    assert correct and wrong, (run.rows, run.stderr[-2000:])
    assert correct["status"] == "ok" and float(correct["total"]) == float(correct["possible"]), \
        correct
    for question in baseline["questions"]:  # the honest mistake costs points in every question
        assert float(wrong[question]) < float(correct[question]), (question, wrong)
    print(f"baseline: 2 honest submissions in {run.seconds:.1f} s, grader peak RSS "
          f"{run.peak_rss / 2**20:.0f} MB")


# ---------------------------------------------------------------------------------------------
# the attack run


def _norm(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and ch not in "'\"")


def _secret_lines(lab: hh.Lab) -> list[str]:
    """Distinctive solution lines (whitespace and quotes removed) that no public file holds.

    Public: the student notebook and the installed cnnlab package, which students have too
    (its own conv2d_loops shares lines with lab 1's solution, so those prove nothing). Short
    generic lines (`x = np.asarray(x, dtype=float)`) occur in any library: left out."""
    public = [json.dumps(lab.student)] + [p.read_text(errors="ignore")
                                         for p in (hh.ROOT / "cnnlab").rglob("*.py")]
    seen = _norm("\n".join(public).replace("\\n", "\n"))
    lines = {line for code in lab.solutions for line in code.splitlines()}
    distinctive = {_norm(line) for line in lines if len(_norm(line)) >= 28
                   or re.fullmatch(r"\w+=[-\d(),.]+", _norm(line))}  # long, or an answer
    return sorted(line for line in distinctive if line not in seen)


def _system_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({str(Path(hh.ROOT / "cnnlab")), paths["purelib"], paths["stdlib"],
                   str(Path(sys.executable).resolve().parent), "/usr/local/lib", "/etc",
                   "/usr/bin", "/var/tmp", "/tmp", "/dev/shm"})


def _environment_paths() -> list[str]:
    """The grader's Python environment as its runner sees it: the prefixes (a venv and the
    interpreter behind it), the folders on its isolated sys.path, and the cnnlab package."""
    code = "import json, sys; print(json.dumps(sys.path))"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(cnnlab.__file__).resolve().parent), *json.loads(done.stdout)}
    return sorted(p for p in paths if p and os.path.isabs(p) and os.path.exists(p))


def _shortcut_notebooks(world: World) -> dict[str, dict]:
    """Correct submissions whose loop functions are replaced by vectorised shortcuts."""
    def replaced(make) -> list[str]:
        out = []
        for code in world.lab.solutions:
            names = hh.function_names(code)
            out.append(make(names[0]) if names and names[0] in cheats.SHORTCUTS else code)
        return out

    if not set(world.lab.functions) & set(cheats.SHORTCUTS):
        return {}
    return {"shortcut_einsum": hh.fill(world.lab.student, replaced(
                lambda f: cheats.SHORTCUTS[f]["einsum"])),
            "shortcut_shadow_builtin": hh.fill(world.lab.student, replaced(cheats.shadowed)),
            "shortcut_code_swap": hh.fill(world.lab.student, replaced(cheats.code_swapped)),
            "shortcut_default_argument": hh.fill(world.lab.student,
                                                 replaced(cheats.default_argument)),
            "shortcut_comprehension_local": hh.fill(world.lab.student,
                                                    replaced(cheats.comprehension_local)),
            "shortcut_nested_in_if": hh.fill(world.lab.student, replaced(cheats.nested_in_if)),
            "shortcut_frame_rebind": hh.fill(world.lab.student, replaced(cheats.frame_rebind)),
            "shortcut_numpy_alias_patch": hh.fill(world.lab.student, [
                cheats.ALIAS_PATCH if "corr2d" in hh.function_names(code) else code
                for code in world.lab.solutions]),
            "shortcut_index_im2col": hh.fill(world.lab.student, [
                cheats.INDEX_IM2COL if "corr2d" in hh.function_names(code) else code
                for code in world.lab.solutions])}


@pytest.fixture(scope="module")
def attack_run(world, baseline):
    folder = world.root / "attacks"
    folder.mkdir()
    out_dir = world.root / "out"
    out_dir.mkdir()
    (out_dir / "last_week.csv").write_text("file,total\nold.ipynb,3\n")
    csv_path = out_dir / "grades.csv"
    honest = {"honest_correct": world.lab.correct_notebook,
              "honest_wrong": world.lab.wrong_notebook}
    paths = {name: folder / f"{name}.ipynb" for name in [*honest, *ATTACKS]}
    shortcuts = _shortcut_notebooks(world)
    paths.update({name: folder / f"{name}.ipynb" for name in shortcuts})
    listener = hh.Listener(world.root / "listen.sock", world.marker + "-abstract")
    dist = world.work / "dist"
    facts = {
        "marker": world.marker,
        "solution": "\n\n".join(world.lab.solutions),
        "questions": baseline["questions"],
        "values": world.lab.values, "functions": world.lab.functions,
        "pickle_marker": str(world.root / "unpickled-in-grader"),
        "host_paths": sorted({str(dist), str(dist / LAB / "autograder"), str(hh.LABS),
                              str(hh.ROOT / "notebooks"), str(hh.ROOT / "tests"),
                              str(folder), str(out_dir), str(world.home), str(world.root)}),
        "secret_files": [f"{LAB}.ipynb", "expected.json", "expected.npz", "lab.json",
                         f"{LAB}_gradescope.zip"],
        "secret_lines": _secret_lines(world.lab),
        "system_prefixes": sorted({"/usr", str(Path(sys.prefix).resolve()),
                                   str(Path(sys.base_prefix).resolve())}),
        "secret_name": "CNNLAB_HOSTILE_SECRET",
        "canary": str(world.canary), "canary_text": world.canary.read_text(),
        "home": str(world.home),
        "real_home": pwd.getpwuid(os.getuid()).pw_dir, "env_paths": _environment_paths(),
        "write_targets": sorted([*(str(p) for p in paths.values()), str(world.canary),
                                 *(str(p) for p in (dist / LAB).rglob("*") if p.is_file()),
                                 str(out_dir / "last_week.csv")]),
        "write_dirs": [str(folder), str(dist / LAB / "autograder"), str(out_dir),
                       str(world.home), str(world.work)],
        "csv": str(csv_path),
        "system_dirs": _system_dirs(),
        "port": listener.port, "abstract": world.marker + "-abstract",
        "unix_path": str(world.root / "listen.sock"),
    }
    for name, notebook in honest.items():
        hh.write(paths[name], notebook)
    for name, notebook in shortcuts.items():
        hh.write(paths[name], notebook)
    for attack in attacks.ATTACKS:
        base = world.lab.correct_notebook if attack.base == "correct" else \
            world.lab.wrong_notebook
        cells = attacks.cells(attack, facts)
        notebook = hh.add_cells(base, cells)
        if attack.at_start:
            notebook = hh.add_cells(notebook, cells, at_start=True)
        hh.write(paths[attack.name], notebook)
    watched = (folder, dist, out_dir, world.home)
    before = hh.snapshot(*watched)
    listener.start()
    # the slow ones first, so that their timeouts overlap the rest
    order = sorted(paths, key=lambda n: n not in ("bg_nondaemon_thread", "stop_grader"))
    try:
        run = hh.grade([str(paths[n]) for n in order], csv_path, world.work, world.env, LAB,
                       TIMEOUT, kill_above=baseline["run"].peak_rss + 2 * 2**30,
                       extra=["--memory", MEMORY])
    finally:
        listener.close()
    left = hh.processes_with(world.marker)
    hh.kill_all(left)
    after = hh.snapshot(*watched, skip=(csv_path,))
    planted = [str(p) for d in facts["system_dirs"] for p in Path(d).glob(world.marker + "*")]
    for path in planted:  # clean up before failing: these are shared folders
        Path(path).unlink(missing_ok=True)
    return {"run": run, "paths": paths, "before": before, "after": after, "left": left,
            "planted": planted, "listener": listener, "facts": facts, "csv": csv_path}


def _row(run: hh.Run, path: Path) -> dict[str, str]:
    row = hh.find_row(run.rows, str(path))
    assert row is not None, f"no row for {path.name}; rows: {sorted(run.rows)[:40]}\n" \
                            f"{run.stderr[-1500:]}"
    return row


def _check_row(row: dict, baseline: dict, expect: str) -> None:
    questions = baseline["questions"]
    got = hh.scores(row, questions)
    best = hh.scores(baseline["correct"], questions)
    honest_wrong = hh.scores(baseline["wrong"], questions)
    assert float(row["total"]) == pytest.approx(sum(got.values())), row
    assert float(row["possible"]) == float(baseline["correct"]["possible"]), row
    for question in questions:
        assert 0 <= got[question] <= best[question], (question, row)
        if expect == "as_wrong":
            assert got[question] <= honest_wrong[question], \
                f"{question}: credit for wrong answers: {got[question]} > " \
                f"{honest_wrong[question]} ({row['status']}: {row['reason'][:300]})"
        elif expect == "as_correct":
            assert got[question] == best[question], \
                f"{question}: correct answers lost points under the attack: {got[question]} " \
                f"< {best[question]} ({row['status']}: {row['reason'][:300]})"
    if row["status"] not in ("ok", "errors"):
        assert row["reason"].strip(), row


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_scores_right(attack_run, baseline, name):
    attack = ATTACKS[name]
    row = _row(attack_run["run"], attack_run["paths"][name])
    _check_row(row, baseline, attack.expect)


@pytest.mark.parametrize("name", [
    "shortcut_einsum", "shortcut_shadow_builtin", "shortcut_code_swap",
    "shortcut_numpy_alias_patch", "shortcut_default_argument", "shortcut_comprehension_local",
    "shortcut_nested_in_if", "shortcut_frame_rebind", "shortcut_index_im2col"])
def test_vectorised_shortcut_loses_the_loop_points(world, attack_run, baseline, name):
    if name not in attack_run["paths"]:
        pytest.skip("the lab has none of the loop functions the shortcuts know")
    row = _row(attack_run["run"], attack_run["paths"][name])
    _check_row(row, baseline, "bounded")
    best = hh.scores(baseline["correct"], baseline["questions"])
    got = hh.scores(row, baseline["questions"])
    replaced = ["corr2d"] if name in ("shortcut_numpy_alias_patch", "shortcut_index_im2col") \
        else list(cheats.SHORTCUTS)
    loops = [f for f in hh.loops_required(LAB) if f in replaced]
    if not loops:
        pytest.skip("the master requires loops in none of the functions the shortcuts know")
    lost = [q for q in baseline["questions"] if got[q] < best[q]]
    assert len(lost) >= len(loops), \
        f"{name}: loop-free code kept full marks in {len(loops) - len(lost)} of the " \
        f"{len(loops)} loop questions: {row}"


def test_attack_run_keeps_honest_rows(attack_run, baseline):
    run = attack_run["run"]
    assert run.status in (0, 1), (run.status, run.stderr[-2000:])
    assert len(run.raw_rows) - 1 == len(attack_run["paths"]), "one row per submission"
    for name in ("honest_correct", "honest_wrong"):
        row = _row(run, attack_run["paths"][name])
        reference = baseline[name.split("_")[1]]
        keys = [*baseline["questions"], "total", "possible", "status"]
        assert {k: row[k] for k in keys} == {k: reference[k] for k in keys}, (name, row)
    print(f"\nattack run: {len(attack_run['paths'])} submissions in {run.seconds:.1f} s")
    for row in run.raw_rows[1:]:
        print(" ", Path(row[0]).name, *row[-4:-2], row[-2], "|", row[-1][:200])


def test_nothing_outside_the_scratch_changed(attack_run, world):
    before, after = attack_run["before"], attack_run["after"]
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed, added or removed outside the sandbox: {changed[:20]}"
    assert not attack_run["planted"], f"files planted in shared folders: {attack_run['planted']}"
    assert not Path(attack_run["facts"]["pickle_marker"]).exists(), \
        "the grader unpickled an object made by a submission"


def test_no_process_left_behind(attack_run):
    assert not attack_run["left"], f"processes outlived the grade run: {attack_run['left']}"


def test_no_connection_left_the_sandbox(attack_run):
    assert not attack_run["listener"].hits, attack_run["listener"].hits


def test_secrets_never_reach_any_output(attack_run, world):
    run = attack_run["run"]
    for text in (run.csv_text, run.stdout, run.stderr):
        assert world.secret not in text
        assert world.canary.read_text() not in text


def test_grader_memory_stays_bounded(attack_run, baseline):
    peak, reference = attack_run["run"].peak_rss, baseline["run"].peak_rss
    print(f"grader peak RSS: {peak / 2**20:.0f} MB with the attacks, "
          f"{reference / 2**20:.0f} MB on the honest baseline")
    assert peak <= reference + MEMORY_SLACK


def test_csv_cells_are_not_formulas(attack_run):
    for row in attack_run["run"].raw_rows[1:]:
        for cell in row:
            assert not cell.startswith(hh.FORMULA), row


# ---------------------------------------------------------------------------------------------
# the files run: malformed notebooks, symlinks, odd names

@pytest.fixture(scope="module")
def files_run(world, baseline):
    folder = world.root / "files"
    folder.mkdir()
    expect = files.write_all(folder, world.lab.correct_notebook, world.lab.wrong_notebook)
    (folder / "dist").symlink_to(world.work / "dist")
    before = hh.snapshot(folder, world.work / "dist", world.home)
    names = sorted(expect)
    run = hh.grade(names, folder / "grades.csv", folder, world.env, LAB, TIMEOUT,
                   kill_above=baseline["run"].peak_rss + 2 * 2**30)
    after = hh.snapshot(folder, world.work / "dist", world.home,
                        skip=(folder / "grades.csv",))
    return {"run": run, "expect": expect, "before": before, "after": after}


def test_files_run_gives_every_file_one_row(files_run):
    run = files_run["run"]
    assert run.raw_rows, f"no CSV (exit status {run.status}): {run.stderr[-2000:]}"
    missing = sorted(n for n in files_run["expect"] if hh.find_row(run.rows, n) is None)
    assert not missing, f"no row for {missing}; rows: {sorted(run.rows)}"
    assert len(run.raw_rows) - 1 == len(files_run["expect"])
    print(f"\nfiles run: {len(files_run['expect'])} submissions in {run.seconds:.1f} s")
    for row in run.raw_rows[1:]:
        print(" ", repr(row[0]), *row[-4:-1], "|", row[-1][:150])


@pytest.mark.parametrize("name", ["deep_nesting.ipynb", "deep_metadata.ipynb",
                                  "cells_not_a_list.ipynb", "not_json.ipynb", "empty.ipynb",
                                  "nbformat3.ipynb", "list_at_top.ipynb", "bad_utf8.ipynb",
                                  "huge.ipynb", "metadata_list.ipynb", "metadata_string.ipynb",
                                  "cnnlab_field_wrong_type.ipynb",
                                  "lab_field_wrong_type.ipynb", "cells_junk.ipynb",
                                  "other_lab.ipynb"])
def test_malformed_notebook(files_run, baseline, name):
    row = _row(files_run["run"], Path(name))
    expect = files_run["expect"][name]
    if expect == "invalid":
        assert row["status"] == "invalid" and float(row["total"]) == 0, row
        assert row["reason"].strip(), row
    else:
        _check_row(row, baseline, expect)


@pytest.mark.parametrize("name", ["passwd_link.ipynb", "zero_link.ipynb", "copy_link.ipynb",
                                  "fifo.ipynb"])
def test_symlinks_and_special_files(files_run, baseline, name):
    row = _row(files_run["run"], Path(name))
    assert "root:" not in files_run["run"].csv_text  # /etc/passwd never quoted
    if files_run["expect"][name] == "invalid":
        assert row["status"] == "invalid" and float(row["total"]) == 0, row
    elif row["status"] != "invalid":
        _check_row(row, baseline, "as_correct")


@pytest.mark.parametrize("name", files.ODD_NAMES)
def test_odd_file_names_are_data(files_run, baseline, name):
    row = _row(files_run["run"], Path(name))
    _check_row(row, baseline, "as_correct")


@pytest.fixture(scope="module")
def dash_run(world, baseline):
    """`cnnlab grade *.ipynb` in a folder whose file names start with `-` (a run of its own:
    if they are taken for options, the other file tests still run)."""
    folder = world.root / "dashes"
    folder.mkdir()
    (folder / "dist").symlink_to(world.work / "dist")
    for name in files.DASH_NAMES:
        hh.write(folder / name, world.lab.correct_notebook)
    hh.write(folder / "honest_wrong.ipynb", world.lab.wrong_notebook)
    names = sorted([*files.DASH_NAMES, "honest_wrong.ipynb"])  # as the shell's glob sorts them
    return hh.grade(names, folder / "grades.csv", folder, world.env, LAB, TIMEOUT)


@pytest.mark.parametrize("name", files.DASH_NAMES)
def test_file_names_starting_with_a_dash_are_files(dash_run, baseline, name):
    assert dash_run.raw_rows, f"no CSV (exit status {dash_run.status}): {dash_run.stderr[-600:]}"
    _check_row(_row(dash_run, Path(name)), baseline, "as_correct")
    _check_row(_row(dash_run, Path("honest_wrong.ipynb")), baseline, "as_wrong")
    for row in dash_run.raw_rows[1:]:
        assert not row[0].startswith(hh.FORMULA), row


def test_files_run_keeps_honest_rows_and_files(files_run, baseline):
    run = files_run["run"]
    keys = [*baseline["questions"], "total", "possible", "status"]
    for name in ("honest_correct", "honest_wrong"):
        row = _row(run, Path(f"{name}.ipynb"))
        reference = baseline[name.split("_")[1]]
        assert {k: row[k] for k in keys} == {k: reference[k] for k in keys}, (name, row)
    before, after = files_run["before"], files_run["after"]
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, changed[:20]
    assert run.peak_rss <= baseline["run"].peak_rss + MEMORY_SLACK, \
        f"grader peak RSS {run.peak_rss / 2**20:.0f} MB (baseline " \
        f"{baseline['run'].peak_rss / 2**20:.0f} MB)"


def test_files_run_csv_has_no_formulas(files_run):
    for row in files_run["run"].raw_rows[1:]:
        for cell in row:
            assert not cell.startswith(hh.FORMULA), f"formula in the CSV: {cell!r} in {row}"


def test_attack_cells_are_valid_python():
    facts = {"marker": "m", "solution": "", "questions": [], "values": [], "functions": []}
    for attack in attacks.ATTACKS:
        for code in attacks.cells(attack, facts):
            compile(code, attack.name, "exec")  # a broken attack would prove nothing
    for attack in attacks.BOMBS:
        for code in attacks.cells(attack, facts):
            if cheats.AST_BOMB in code:
                continue  # a list literal by construction (compiling it takes 13 s)
            compile(code, attack.name, "exec")
    for function in cheats.SHORTCUTS:
        compile(cheats.shadowed(function), function, "exec")
        compile(cheats.code_swapped(function), function, "exec")


# ---------------------------------------------------------------------------------------------
# the bomb run: result files that unpack to far more than they weigh


@pytest.fixture(scope="module", params=[a.name for a in attacks.BOMBS])
def bomb_run(world, baseline, request):
    """One run per bomb, each with the honest pair: a grader that dies loses every row."""
    attack = next(a for a in attacks.BOMBS if a.name == request.param)
    folder = world.root / f"bomb_{attack.name}"
    folder.mkdir()
    (folder / "dist").symlink_to(world.work / "dist")
    hh.write(folder / "honest_correct.ipynb", world.lab.correct_notebook)
    hh.write(folder / "honest_wrong.ipynb", world.lab.wrong_notebook)
    hh.write(folder / "bomb.ipynb", hh.add_cells(world.lab.wrong_notebook,
                                                 attacks.cells(attack, {"marker": world.marker})))
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    run = hh.grade(names, folder / "grades.csv", folder, world.env, LAB, TIMEOUT,
                   kill_above=baseline["run"].peak_rss + 2**30)
    return attack.name, run


def test_result_bombs_do_not_take_the_grader_down(bomb_run, baseline):
    name, run = bomb_run
    reference = baseline["run"].peak_rss
    print(f"\n{name}: grader peak RSS {run.peak_rss / 2**20:.0f} MB in {run.seconds:.1f} s")
    assert run.peak_rss <= reference + MEMORY_SLACK, \
        f"{name}: grader peak RSS {run.peak_rss / 2**20:.0f} MB vs {reference / 2**20:.0f} MB " \
        f"on the baseline (killed above +1 GB; exit status {run.status})"
    _check_row(_row(run, Path("bomb.ipynb")), baseline, "as_wrong")
    keys = [*baseline["questions"], "total", "possible", "status"]
    for honest in ("honest_correct", "honest_wrong"):
        row = _row(run, Path(f"{honest}.ipynb"))
        assert {k: row[k] for k in keys} == {k: baseline[honest.split("_")[1]][k] for k in keys}


# ---------------------------------------------------------------------------------------------
# the control: the oracles do pay when nothing hides the secrets


CONTROL = ["read_hidden_paths", "env_exfiltration", "home_read", "network", "memory_oracle"]


@pytest.fixture(scope="module")
def control_run(world, baseline, attack_run):
    """The oracle attacks under `--no-sandbox` (and a 16 GB cap): they must find their leak,
    or the sandboxed run above would prove nothing. Only probes run here, no damage."""
    folder = world.root / "control"
    folder.mkdir()
    listener = hh.Listener(world.root / "control.sock", world.marker + "-control")
    facts = dict(attack_run["facts"], port=listener.port, abstract=world.marker + "-control",
                 unix_path=str(world.root / "control.sock"))
    hh.write(folder / "honest_wrong.ipynb", world.lab.wrong_notebook)
    for name in CONTROL:
        hh.write(folder / f"{name}.ipynb",
                 hh.add_cells(world.lab.wrong_notebook, attacks.cells(ATTACKS[name], facts)))
    listener.start()
    try:
        run = hh.grade([str(p) for p in sorted(folder.glob("*.ipynb"))], folder / "grades.csv",
                       world.work, world.env, LAB, TIMEOUT,
                       extra=["--no-sandbox", "--memory", "16G"])
    finally:
        listener.close()
    return {"run": run, "folder": folder, "hits": listener.hits}


@pytest.mark.parametrize("name", CONTROL)
def test_oracle_pays_without_the_sandbox(control_run, baseline, name):
    run = control_run["run"]
    assert "sandbox" in run.stderr.lower(), "--no-sandbox must warn"
    row = _row(run, control_run["folder"] / f"{name}.ipynb")
    wrong = _row(run, control_run["folder"] / "honest_wrong.ipynb")
    assert float(row["total"]) > float(wrong["total"]), \
        f"{name} found nothing even unconfined: the probe is broken ({row})"
    if name == "network":
        assert control_run["hits"], "the listener saw no connection"


# ---------------------------------------------------------------------------------------------
# labs 2 and 3: the honest pair and a few attacks, one run each (lab 2 trains a model in
# every submission; lab 3 is the backward passes)

OTHER_LABS = ["lab2_build_a_cnn", "lab3_backward", "lab4_modern_blocks"]
OTHER_ATTACKS = ["eq_always_true", "forge_result_files", "bg_subprocess"]


@pytest.fixture(scope="module", params=OTHER_LABS)
def other_lab_run(request, world, attack_run, tmp_path_factory):
    name = request.param
    folder = world.root / name
    folder.mkdir()
    lab = hh.copy_assigned(name, assigned_dist(tmp_path_factory), world.work / "dist")
    dist = world.work / "dist" / name
    facts = dict(attack_run["facts"], solution="\n\n".join(lab.solutions), values=lab.values,
                 functions=lab.functions,
                 host_paths=[*attack_run["facts"]["host_paths"], str(dist)])
    paths = {"honest_correct": hh.write(folder / "honest_correct.ipynb", lab.correct_notebook),
             "honest_wrong": hh.write(folder / "honest_wrong.ipynb", lab.wrong_notebook)}
    for attack_name in OTHER_ATTACKS:
        attack = ATTACKS[attack_name]
        base = lab.correct_notebook if attack.base == "correct" else lab.wrong_notebook
        paths[attack_name] = hh.write(folder / f"{attack_name}.ipynb",
                                      hh.add_cells(base, attacks.cells(attack, facts)))
    before = hh.snapshot(folder, dist, world.home)
    run = hh.grade([str(p) for p in paths.values()], folder / "grades.csv", world.work,
                   world.env, name, 120)
    left = hh.processes_with(world.marker)
    hh.kill_all(left)
    after = hh.snapshot(folder, dist, world.home, skip=(folder / "grades.csv",))
    header = run.raw_rows[0] if run.raw_rows else ["total"]
    reference = {"questions": header[1:header.index("total")],
                 "correct": hh.find_row(run.rows, str(paths["honest_correct"])),
                 "wrong": hh.find_row(run.rows, str(paths["honest_wrong"]))}
    return {"lab": name, "run": run, "paths": paths, "reference": reference, "left": left,
            "changed": sorted(k for k in before.keys() | after.keys()
                              if before.get(k) != after.get(k))}


def test_other_labs_honest_and_attacks(other_lab_run):
    run, reference = other_lab_run["run"], other_lab_run["reference"]
    print(f"\n{other_lab_run['lab']} run: {len(other_lab_run['paths'])} submissions in "
          f"{run.seconds:.1f} s")
    correct, wrong = reference["correct"], reference["wrong"]
    assert correct and wrong, run.stderr[-1500:]
    assert float(correct["total"]) == float(correct["possible"]), correct
    assert float(wrong["total"]) < float(correct["total"]), wrong
    for name in OTHER_ATTACKS:
        _check_row(_row(run, other_lab_run["paths"][name]), reference, ATTACKS[name].expect)
    assert not other_lab_run["left"], other_lab_run["left"]
    assert not other_lab_run["changed"], other_lab_run["changed"][:10]
    assert world_secret_absent(run)


def world_secret_absent(run: hh.Run) -> bool:
    return "hostile-secret-" not in run.csv_text + run.stdout + run.stderr
