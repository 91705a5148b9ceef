"""The self-contained analysis report: ``report.html``, ``report.md`` and their figures.

A report is made from a fit (fresh, or loaded from a FIT folder with
:meth:`~trialsynth.results.base.FitResult.load`) in three steps:

1. :func:`make_figures` draws every figure of :mod:`trialsynth.report.plots` that applies to the
   fit and saves each as PNG (300 dpi) and SVG under ``figures/``;
2. :func:`~trialsynth.report.context.build_context` collects everything the text says
   into one JSON-serialisable dict (written as ``report.json``): the question, the data
   with provenance, methods text generated from the fitted model, priors and sampler,
   results, the published results, classical references, diagnostics, sensitivity,
   versions, seed, data hash;
3. :func:`render_markdown` and :func:`render_html` turn that dict into text with the
   jinja2 templates in ``trialsynth/templates``. The HTML embeds every figure (SVG as a
   base64 data URI) and uses no external URL, so it opens from disk with no network.

Rendering is a pure function of ``report.json`` and the figure files, so a committed report
can be checked against the current code (``tests/test_report.py``). ``REPORT_FORMAT`` is
stamped in both files and changes whenever the structure changes.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.report.context import (
    ASSURANCE_SIZES,
    REPORT_FORMAT,
    ReportError,
    build_context,
    find_sensitivity,
    future_trial,
    rank_test,
)
from trialsynth.report.pdf import DEFAULT_FIGURE_FORMATS, html_to_pdf, save_pdf_figure
from trialsynth.report.sof import sof_csv
from trialsynth.report.stamp import (
    STAMP_FILE,
    clear_stamp,
    figure_names,
    has_figure_files,
    input_stamp,
    reusable,
    write_stamp,
)
from trialsynth.report.uniformity import computed_once

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trialsynth.results.base import FitResult

#: File of the analysis metadata (the spec's ``[analysis]`` table) in a FIT folder.
ANALYSIS_FILE = "analysis.json"


def analysis_meta(
    *,
    name: str,
    title: str = "",
    question: str = "",
    treatment: str = "treatment",
    control: str = "control",
    spec: str | None = None,
    cumulative: str | None = None,
) -> dict[str, Any]:
    """The analysis metadata a report needs beyond the fit (from a spec's ``[analysis]``).

    ``cumulative``: the order column of a spec's ``[cumulative]`` section (the report then
    gets the cumulative meta-analysis; the key is absent otherwise).
    """
    meta = {
        "name": name,
        "title": title,
        "question": question,
        "treatment": treatment,
        "control": control,
        "spec": spec,
    }
    return meta if cumulative is None else meta | {"cumulative": cumulative}


def write_analysis_meta(folder: str | Path, meta: dict[str, Any]) -> Path:
    """Store ``meta`` as ``analysis.json`` in a FIT folder (so ``report FIT`` needs no spec)."""
    from trialsynth.core.files import atomic_write_text

    path = Path(folder) / ANALYSIS_FILE
    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def read_analysis_meta(folder: str | Path, fit: FitResult) -> dict[str, Any]:
    """``analysis.json`` of a FIT folder, or defaults from the fit when it is absent."""
    path = Path(folder) / ANALYSIS_FILE
    if path.exists():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ReportError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(meta, dict):
            raise ReportError(f"{path}: expected a JSON object")
        return analysis_meta(name=str(meta.get("name") or fit.provenance["data_name"])) | {
            k: v
            for k, v in meta.items()
            if k in ("title", "question", "treatment", "control", "spec", "cumulative")
        }
    return analysis_meta(name=str(fit.provenance["data_name"]))


@dataclass(frozen=True)
class FigureSpec:
    """One report figure: how to draw it and where it goes."""

    name: str
    title: str
    caption: str
    section: str
    draw: Callable[..., Figure]
    kwargs: tuple[str, ...] = ()


def _figure_specs(fit: FitResult) -> list[FigureSpec]:
    from trialsynth.report import forest, plots

    specs = [
        FigureSpec(
            "forest",
            "Forest plot",
            "Observed OR per trial (open squares, 95% CI) and shrunken posterior OR (filled "
            "circles, 95% CrI); pooled OR (diamond), predictive interval for a new trial, "
            "classical pooled ORs (triangles). * counts from printed percentages; "
            "\u2020 counts reconstructed from pooled totals.",
            "results",
            forest.forest_plot,
            ("treatment", "control", "title"),
        ),
        FigureSpec(
            "posterior",
            "Pooled OR and OR of a new trial",
            "Posterior densities (solid) with the prior (dashed) overlaid; shaded: 95% CrI.",
            "results",
            plots.posterior_plot,
            ("treatment", "control"),
        ),
    ]
    if fit.spec.random_effects is not None:
        specs.append(
            FigureSpec(
                "tau",
                "Heterogeneity",
                "Prior (dashed) and posterior (solid) density of tau; vertical lines: "
                "posterior median and 95% CrI.",
                "results",
                plots.tau_plot,
            )
        )
    specs.append(
        FigureSpec(
            "benefit",
            "Probability of benefit",
            "P(OR > c) for the pooled OR and for a new trial over thresholds c "
            "(bands: \u00b12 Monte Carlo standard errors).",
            "results",
            plots.benefit_plot,
            ("treatment",),
        )
    )
    if fit.subgroups:
        specs.append(
            FigureSpec(
                "subgroups",
                "Subgroups",
                "Pooled OR (diamond) and new-trial OR (bar) per subgroup.",
                "results",
                plots.subgroup_plot,
                ("treatment", "control"),
            )
        )
    if fit.has_chains:
        specs += [
            FigureSpec(
                "rank",
                "Rank plots",
                "Difference between each chain's rank ECDF and the uniform, per "
                "hyperparameter; p: ArviZ's multi-chain uniformity test.",
                "diagnostics",
                plots.rank_plot,
            ),
            FigureSpec(
                "trace",
                "Traces",
                "Per-chain densities and traces of the hyperparameters.",
                "diagnostics",
                plots.trace_plot,
            ),
        ]
    return specs


def make_figures(
    fit: FitResult,
    folder: str | Path,
    *,
    analysis: dict[str, Any],
    sensitivity: list[dict[str, Any]] | None = None,
    figure_formats: tuple[str, ...] = DEFAULT_FIGURE_FORMATS,
    later: Callable[[], list[FigureSpec]] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Draw and save every figure that applies to ``fit`` in ``folder/figures``.

    SVG is always written (the report shows it); ``"png"`` in ``figure_formats`` adds a
    300-dpi PNG of each figure and ``"pdf"`` a vector PDF (fonts embedded).

    The fit's own figures first, with ``sensitivity`` rows the sensitivity figure
    (``plots.sensitivity_plot``), then the figures ``later`` returns (:func:`_later_specs`),
    called only once the others are drawn: :func:`write_report` computes the future-trial
    analyses they show meanwhile.

    Returns
    -------
    list of dict
        ``name``, ``title``, ``caption``, ``section``, ``svg`` (and ``png``, ``pdf`` when
        asked for; paths relative to ``folder``), in report order.
    float
        Seconds spent.
    """
    t0 = time.perf_counter()
    options = {
        "treatment": analysis.get("treatment") or "treatment",
        "control": analysis.get("control") or "control",
        "title": analysis.get("title") or None,
    }
    specs = _figure_specs(fit)
    if sensitivity:
        from trialsynth.report.plots import sensitivity_plot

        specs.append(
            FigureSpec(
                "sensitivity",
                "Sensitivity",
                "Pooled OR (95% CrI) and P(OR > 1) per scenario of the sensitivity analysis.",
                "sensitivity",
                lambda _fit, **_kw: sensitivity_plot(sensitivity),
            )
        )
    # the rank plot's multi-chain test is the report's rank test (run beside, in the
    # future-trial analyses' thread): computed once, by whichever comes first; a fit
    # without chains has neither (and imports no arviz-stats for them)
    with computed_once(fit.has_chains):
        out = _draw_all(fit, folder, specs, options, figure_formats)
        if later is not None:
            out += _draw_all(fit, folder, later(), options, figure_formats)
    return out, time.perf_counter() - t0


def _later_specs(
    design: Any, extra: list[FigureSpec] | None, bias: dict[str, Any] | None
) -> list[FigureSpec]:
    """The figures after the fit's own: assurance, ``extra``, a bias analysis's."""
    specs = []
    if design is not None:
        from trialsynth.report.plots import assurance_plot

        specs.append(
            FigureSpec(
                "assurance",
                "Assurance of a future trial",
                "Probability that a future trial of N per arm meets the success criterion "
                "(band: \u00b12 MCSE), the classical power at the pooled posterior median "
                "(dashed) and the limit P(OR_new > 1) as N grows (dotted).",
                "future",
                lambda _fit, **_kw: assurance_plot(design),
            )
        )
    specs += extra or []
    if bias:  # a bias analysis of these data (trialsynth bias FIT): its three figures
        from trialsynth.report.figures_bias import bias_figures

        specs += [
            FigureSpec(name, title, caption, "bias", lambda _fit, f=fig, **_kw: f)
            for name, title, caption, fig in bias_figures(bias)
        ]
    return specs


def _draw_all(
    fit: FitResult,
    folder: str | Path,
    specs: list[FigureSpec],
    options: dict[str, Any],
    figure_formats: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Draw and save ``specs`` in order; the entries of :func:`make_figures`."""
    import matplotlib.pyplot as plt

    from trialsynth.report.style import save_figure

    out = []
    for spec in specs:
        fig = spec.draw(fit, **{k: options[k] for k in spec.kwargs})
        try:
            paths = save_figure(
                fig, Path(folder) / "figures", spec.name, png="png" in figure_formats
            )
            if "pdf" in figure_formats:
                paths["pdf"] = save_pdf_figure(fig, Path(folder) / "figures" / f"{spec.name}.pdf")
        finally:
            plt.close(fig)
        out.append(
            {
                "name": spec.name,
                "title": spec.title,
                "caption": spec.caption,
                "section": spec.section,
                **{kind: f"figures/{path.name}" for kind, path in paths.items()},
            }
        )
    return out


def next_trial_figures(updated: Any = None, cmap: Any = None, cum: Any = None) -> list[FigureSpec]:
    """Figures of the updated-meta design, its conclusion map and a cumulative analysis."""
    from trialsynth.report import figures_design as fd

    specs = []
    if updated is not None:
        specs.append(
            FigureSpec(
                "future_updated",
                "The new trial alone and in the updated meta-analysis",
                "Assurance against N per arm of the new trial read alone (two-sided test), "
                "of the meta-analysis updated with it reaching P(OR > 1) > G, and of the "
                "updated DerSimonian-Laird 95% CI excluding 1 (bands: \u00b12 MCSE; dotted: "
                "the limits as N grows).",
                "future",
                lambda _fit, **_kw: fd.assurance_curves_plot(updated),
            )
        )
    if cmap is not None:
        specs.append(
            FigureSpec(
                "conclusion_map",
                "Where the new trial changes the conclusion",
                "Updated P(OR > 1) over the new trial's observed OR and size (at the median "
                "control rate); solid line: G; hatched: the updated DerSimonian-Laird 95% CI "
                "excludes 1.",
                "future",
                lambda _fit, **_kw: fd.conclusion_map_plot(cmap),
            )
        )
    if cum is not None:
        specs += [
            FigureSpec(
                "cumulative_forest",
                "Cumulative forest plot",
                "Pooled OR (95% CrI, diamonds) and the DerSimonian-Laird OR (95% CI, circles) "
                "after each trial is added; P(OR > 1) on the right.",
                "cumulative",
                lambda _fit, **_kw: fd.cumulative_forest_plot(cum),
            ),
            FigureSpec(
                "cumulative_years",
                "The evidence over time",
                "P(OR > 1) and P(OR_new > 1) after each trial, and the classical cumulative "
                "DerSimonian-Laird estimate beside them.",
                "cumulative",
                lambda _fit, **_kw: fd.cumulative_probability_plot(cum),
            ),
        ]
    return specs


@functools.cache
def _environment(*, html: bool) -> Any:
    """The jinja2 environment of the packaged templates, one a process for each escaping.

    Kept so each template is compiled once a process (0.09 s each); they are package
    files, read through ``importlib.resources``, and do not change while it runs.
    """
    import jinja2

    def load(name: str) -> str:
        return (resources.files("trialsynth.report") / "templates" / name).read_text(
            encoding="utf-8"
        )

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env


def render_markdown(context: dict[str, Any]) -> str:
    """``report.md`` from a report context (figures referenced as files)."""
    return _environment(html=False).get_template("report.md.j2").render(**context)


def render_html(context: dict[str, Any], root: str | Path) -> str:
    """``report.html`` from a report context, embedding the SVG figures found under ``root``."""
    images = {}
    for fig in context["figures"]:
        path = Path(root) / fig["svg"]
        if not path.is_file():
            raise ReportError(f"{path}: figure file missing (regenerate the report)")
        images[fig["name"]] = "data:image/svg+xml;base64," + base64.b64encode(
            path.read_bytes()
        ).decode("ascii")
    return _environment(html=True).get_template("report.html.j2").render(images=images, **context)


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote, and how long each part took."""

    folder: Path
    html: Path
    markdown: Path
    context: Path
    figures: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def figure_files(folder: Path, figures: list[dict[str, Any]]) -> list[Path]:
    """The files of the report's ``figures`` entries (each figure's SVG, PNG and PDF)."""
    return [folder / name for name in figure_names(figures)]


def _listed_figures(folder: Path) -> set[Path]:
    """The figure files that the report in ``folder`` lists, if it has one.

    Only files directly in ``folder/figures`` count, whatever a damaged report.json says.
    """
    try:
        context = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        listed = figure_files(folder, list(context.get("figures", [])))
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return set()
    return {p for p in listed if p.parent == folder / "figures"}


def _remove_unlisted(folder: Path, before: set[Path], figures: list[dict[str, Any]]) -> None:
    """Delete the files of ``before`` (an older report's figures) that ``figures`` drops."""
    for stale in before - set(figure_files(folder, figures)):  # e.g. a PNG not asked for now
        stale.unlink(missing_ok=True)


@dataclass(frozen=True)
class FutureAnalyses:
    """The report's future-trial analyses, each None with a note where it does not apply.

    ``rank_test``: the rank test of the diagnostics section (empty for a fit without
    chains), computed here too because, like the others, it draws nothing.
    """

    design: Any
    design_note: str
    updated: Any
    updated_note: str
    cmap: Any
    seconds: float
    rank_test: list[dict[str, Any]]


def _future_analyses(fit: FitResult) -> FutureAnalyses:
    """Assurance of a future trial, the updated-meta design, its conclusion map; rank test."""
    from trialsynth.report.next_trial import conclusion_for, updated_future

    t0 = time.perf_counter()
    design, design_note = future_trial(fit)
    updated, updated_note = updated_future(fit, list(ASSURANCE_SIZES))
    cmap = None if updated is None else conclusion_for(fit, updated)
    seconds = time.perf_counter() - t0
    # last: the figures that wait for this thread need only what comes before
    rank = rank_test(fit) if fit.diagnostics is not None else []
    return FutureAnalyses(design, design_note, updated, updated_note, cmap, seconds, rank)


def start_future_analyses(fit: FitResult) -> Future[FutureAnalyses]:
    """Start the report's future-trial analyses in a thread now; pass the result as ``ahead``.

    They are pure and seeded, so their numbers do not depend on when they run: ``run``
    starts them as soon as the main fit exists, beside its sensitivity scenarios.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="future-analyses")
    try:
        return pool.submit(_future_analyses, fit)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def write_report(
    fit: FitResult,
    out: str | Path,
    *,
    analysis: dict[str, Any] | None = None,
    sensitivity: list[dict[str, Any]] | None = None,
    formats: tuple[str, ...] = ("html", "md"),
    figure_formats: tuple[str, ...] = DEFAULT_FIGURE_FORMATS,
    bias: dict[str, Any] | None = None,
    stamp: dict[str, Any] | None = None,
    ahead: Future[FutureAnalyses] | None = None,
) -> ReportFiles:
    """Draw the figures and write ``report.json``, ``report.md`` and ``report.html`` in ``out``.

    ``"pdf"`` in ``formats`` also prints ``report.html`` to a paginated ``report.pdf``
    (:func:`trialsynth.report.pdf.html_to_pdf`); ``figure_formats`` as in
    :func:`make_figures`. ``stamp`` (:func:`~trialsynth.report.stamp.input_stamp` of the
    FIT folder ``fit`` was loaded from) is stored last, so that an unchanged fit's next
    ``report FIT`` reuses this report (:func:`report_from_folder`); any previous stamp in
    ``out`` is removed first. ``ahead``: the future-trial analyses of this ``fit`` started
    earlier (:func:`start_future_analyses`); by default they start here.

    Parameters
    ----------
    fit : FitResult
        The fit to report.
    out : path
        Output folder (created); figures go to ``out/figures``.
    analysis : dict, optional
        :func:`analysis_meta` (question, title, arm names); defaults from the fit.
    sensitivity : list of dict, optional
        Rows of a sensitivity run (``sensitivity.json``).
    bias : dict, optional
        A bias analysis (``bias.json``); default: the one in ``out`` if it is of these data.
    """
    from trialsynth.report.bias_section import find_bias
    from trialsynth.report.next_trial import cumulative_for

    folder = Path(out)
    bias = find_bias(folder, fit.provenance["data_sha256"]) if bias is None else bias
    folder.mkdir(parents=True, exist_ok=True)
    clear_stamp(folder)
    before = _listed_figures(folder)
    meta = analysis or analysis_meta(name=str(fit.provenance["data_name"]))
    t0 = time.perf_counter()
    cum = cumulative_for(fit, meta["cumulative"]) if meta.get("cumulative") else None
    t_cum = time.perf_counter() - t0
    # The future-trial analyses are numpy work that releases the GIL: a second thread runs
    # them while this one draws the fit's own figures (same numbers, seeded, pure).
    future = ahead if ahead is not None else start_future_analyses(fit)

    def later() -> list[FigureSpec]:
        f = future.result()
        return _later_specs(f.design, next_trial_figures(f.updated, f.cmap, cum), bias)

    figures, t_fig = make_figures(
        fit,
        folder,
        analysis=meta,
        sensitivity=sensitivity,
        figure_formats=figure_formats,
        later=later,
    )
    _remove_unlisted(folder, before, figures)
    done = future.result()
    t0 = time.perf_counter()
    context = build_context(
        fit,
        analysis=meta,
        figures=figures,
        sensitivity=sensitivity,
        design=done.design,
        design_note=done.design_note,
        updated=done.updated,
        updated_note=done.updated_note,
        cum=cum,
        bias=bias,
        rank_test=done.rank_test,
    )
    paths, t_pdf = _write_files(folder, context, formats)
    if stamp is not None:
        write_stamp(folder, stamp)
    return ReportFiles(
        folder=folder,
        html=paths["html"],
        markdown=paths["markdown"],
        context=paths["context"],
        figures=figure_files(folder, figures),
        timings={
            "assurance_s": done.seconds,
            "cumulative_s": t_cum,
            "figures_s": t_fig,
            "report_s": time.perf_counter() - t0 - t_pdf,
            "pdf_s": t_pdf,
        },
    )


def _write_files(
    folder: Path, context: dict[str, Any], formats: tuple[str, ...]
) -> tuple[dict[str, Path], float]:
    """Write ``report.json``, ``report.md``, ``report.html`` (``sof.csv``, ``report.pdf``).

    Returns the paths and the seconds the PDF took.
    """
    from trialsynth.core.files import atomic_write_text

    context_text = json.dumps(context, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    # Render from the JSON round trip: what the committed report.json re-renders to.
    context = json.loads(context_text)
    paths = {
        "context": folder / "report.json",
        "markdown": folder / "report.md",
        "html": folder / "report.html",
    }
    atomic_write_text(paths["context"], context_text)
    atomic_write_text(paths["markdown"], render_markdown(context))
    atomic_write_text(paths["html"], render_html(context, folder))
    if context.get("sof"):
        atomic_write_text(folder / "sof.csv", sof_csv(context["sof"]))
    t0 = time.perf_counter()
    if "pdf" in formats:
        html_to_pdf(paths["html"], folder / "report.pdf")
    return paths, time.perf_counter() - t0


def rerender(
    context: dict[str, Any], source: Path, out: Path, formats: tuple[str, ...]
) -> ReportFiles:
    """Write the report of a stored ``report.json`` (from ``source``) into ``out``.

    No figure is drawn and nothing is simulated: the figures listed in ``context`` are
    copied from ``source`` when ``out`` is another folder, and ``report.md``,
    ``report.html`` (and ``report.pdf`` if asked) are rendered from ``context``, as
    :func:`write_report` renders them from the same JSON.
    """
    import shutil

    from trialsynth.core.files import atomic_write_text

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    names = ["report.json", *figure_names(context["figures"])]
    if out.resolve() != source.resolve():
        clear_stamp(out)
        before = _listed_figures(out)
        (out / "figures").mkdir(exist_ok=True)
        for name in names:
            if (source / name).is_file():
                shutil.copyfile(source / name, out / name)
        _remove_unlisted(out, before, context["figures"])
    atomic_write_text(out / "report.md", render_markdown(context))
    atomic_write_text(out / "report.html", render_html(context, out))
    if context.get("sof"):
        atomic_write_text(out / "sof.csv", sof_csv(context["sof"]))
    t_render = time.perf_counter() - t0
    if "pdf" in formats:
        html_to_pdf(out / "report.html", out / "report.pdf")
    if out.resolve() != source.resolve():
        shutil.copyfile(source / STAMP_FILE, out / STAMP_FILE)
    return ReportFiles(
        folder=out,
        html=out / "report.html",
        markdown=out / "report.md",
        context=out / "report.json",
        figures=figure_files(out, context["figures"]),
        timings={"reused_s": t_render, "pdf_s": time.perf_counter() - t0 - t_render},
    )


def report_from_folder(
    fit_dir: str | Path,
    out: str | Path | None = None,
    *,
    formats: tuple[str, ...] = ("html", "md"),
    figure_formats: tuple[str, ...] = DEFAULT_FIGURE_FORMATS,
) -> ReportFiles:
    """Make the report of a saved fit (``trialsynth report FIT [--out DIR] [--format ...]``).

    When ``out`` (or else ``fit_dir``) already holds a report made from these very inputs
    by this code (:mod:`trialsynth.report.stamp`), that report is re-rendered (and copied)
    instead of drawn and simulated again: same files, in well under the time.
    """
    fit_dir = Path(fit_dir)
    target = Path(out) if out is not None else fit_dir
    if not (fit_dir / "posterior.nc").is_file():
        raise ReportError(f"{fit_dir}: no posterior.nc (a FIT folder is the output of fit/run)")
    from trialsynth.core.files import recover

    recover(fit_dir)  # finish a save interrupted after its commit point, before hashing
    stamp = input_stamp(fit_dir, figure_formats)
    for source in dict.fromkeys((target, fit_dir)):
        context = reusable(source, stamp)
        if context is not None:
            return rerender(context, source, target, formats)
    from trialsynth.results.base import FitResult  # heavy (xarray, arviz): only to redraw

    fit = FitResult.load(fit_dir)
    meta = read_analysis_meta(fit_dir, fit)
    from trialsynth.report.bias_section import find_bias

    bias = find_bias(fit_dir, fit.provenance["data_sha256"])
    return write_report(
        fit,
        target,
        analysis=meta,
        sensitivity=find_sensitivity(fit_dir),
        bias=bias,
        formats=formats,
        figure_formats=figure_formats,
        stamp=stamp,
    )


def is_current(
    folder: str | Path,
    analysis: dict[str, Any] | None = None,
    figure_formats: tuple[str, ...] = (),
) -> bool:
    """True when ``folder`` holds a report written in this code's ``REPORT_FORMAT``.

    With ``analysis``, the report must also have been written for that metadata (an edited
    question or title makes the report stale); with ``figure_formats``, every figure must
    have a file of each of those formats (``run --figure-format png`` on a report written
    with SVGs only draws it again).
    """
    from trialsynth import __version__

    path = Path(folder) / "report.json"
    if not (path.is_file() and (Path(folder) / "report.html").is_file()):
        return False
    try:
        ctx = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return (
        isinstance(ctx, dict)
        and ctx.get("format") == REPORT_FORMAT
        and ctx.get("trialsynth") == __version__
        and (analysis is None or ctx.get("analysis") == analysis)
        and has_figure_files(Path(folder), ctx.get("figures"), figure_formats)
    )
