"""Graded labs you can trust: ``cnnlab assign`` and ``cnnlab grade`` (instructor side).

How grading works: each submission runs in a bubblewrap sandbox (``sandbox.py``) where a tiny
runner (``runner.py``) executes its code cells, then performs the lab's *call plan* (the
cases' code and inputs: no expected values, no points) and writes the answers as plain data
(JSON + ``np.savez``, no pickle). The grader (``grade.py``) never runs student code: it
reads those files with size caps, validates them and compares them with the expected
answers that ``cnnlab assign`` computed from the master's solution and stored in the
autograder bundle (``bundle.py``) (``scoring.py``, with one class per kind of case in
``kinds.py``), checks
the submitted source statically (``static.py``), and writes one CSV row per submission
(``report.py``). ``check.py`` gives students the public cases (``grader.check("q1")``);
``gradescope.py`` packs the same grader for Gradescope.

Master notebook format (``notebooks/labs/<lab>.ipynb``; the lab's name is the file stem)
-------------------------------------------------------------------------------------
An ordinary notebook that runs top to bottom with the solutions in place (nbval-tested).

* Solutions, in code cells. Lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
  become one ``...`` (at the marker's indentation) in the student notebook. A single line
  ending in ``# SOLUTION`` becomes ``name = ...`` if it is an assignment, else ``...``::

      def corr2d(image, kernel):
          \"\"\"docstring kept\"\"\"
          # BEGIN SOLUTION
          ...loop code...
          # END SOLUTION

      shape_a = (2, 6, 30, 30)  # SOLUTION

* Questions, in RAW cells (nbval does not run them). The first line is
  ``# QUESTION <id>`` (``q1``, ``q2`` ...); the rest is Python run at assign time (trusted)
  with ``case`` and ``np`` defined, declaring the question's cases in order. In the student
  notebook the raw cell becomes a ``grader.check("<id>")`` cell. A question is worth the sum
  of its cases' points; partial credit is per case::

      # QUESTION q1
      rng = np.random.default_rng(21)
      case("7x6 image, 2x3 kernel", "corr2d(x, k)", public=True, points=1,
           inputs={"x": rng.normal(size=(7, 6)), "k": rng.normal(size=(2, 3))},
           hint="the output is (H - kH + 1, W - kW + 1)")
      case("written with loops", static="loops_only", function="corr2d", points=1)

  ``case(name, code="", *, inputs={}, public=False, points=1.0, compare="auto",
  rtol=1e-5, atol=1e-6, at_least=None, at_most=None, expected=<master's answer>, hint="",
  static=None, function=None)``:

  - ``code``: statements ending in an expression, run in the student's namespace with
    ``inputs`` bound as extra names (inputs: plain data: int/float/bool/str/None, lists,
    tuples, numeric NumPy arrays). Its value must be plain data too; torch tensors are
    converted to arrays inside the sandbox. Import what the code needs in it
    (``"import torch\\ntuple(build_model()(torch.zeros(2, 1, 12, 12)).shape)"``).
  - ``expected``: by default the value the master's solution gives for the same code;
    pass a value to fix it (e.g. true labels).
  - ``compare``: ``"equal"`` (types and values exactly: a tuple is not a list, an int is
    not a float), ``"close"`` (numbers/arrays, same shape, ``np.isclose`` with
    ``rtol``/``atol``), ``"auto"`` (close when the expected value holds floats, else equal)
    or ``"accuracy"`` (integer predictions vs ``expected`` labels; passes when the fraction
    right is ``>= at_least``) or ``"range"`` (a number in ``[at_least, at_most]``).
  - ``public``: shown to students (code, inputs and expected answer go into
    ``<lab>.checks.json``); hidden cases never leave the autograder folder except their
    code and inputs, which the sandbox receives.
  - ``static="loops_only", function="name"``: no code runs; the grader parses the
    submission and requires ``name`` to be written with explicit loops (see ``static.py``).
  - ``hint``: one line printed to the student under a failing public case.

``cnnlab assign MASTER --out DIR`` runs the solution once through the same runner, stores
its answers, and refuses to build the lab unless the solution earns full marks and no
solution line appears in the student files. Output: ``DIR/<lab>/student/<lab>.ipynb`` +
``<lab>.checks.json``; ``DIR/<lab>/autograder/`` with ``lab.json`` (points, comparison
rules), ``expected.json/.npz``, ``plan.json/.npz`` (the only part a sandbox sees), the
solution notebook ``<lab>.ipynb`` and ``<lab>_gradescope.zip``.
"""

from __future__ import annotations

from collections.abc import Sequence


def assign_main(argv: Sequence[str]) -> int:
    """``cnnlab assign`` (imports the assign machinery only when it runs)."""
    from cnnlab.grading.assign import assign_main as run

    return run(argv)


def grade_main(argv: Sequence[str]) -> int:
    """``cnnlab grade`` (imports the grading machinery only when it runs)."""
    from cnnlab.grading.grade import grade_main as run

    return run(argv)
