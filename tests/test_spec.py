"""Tests of analysis specs (``models/*.toml``): loading, and one-line errors for bad specs.

A misspelt key must be an error that lists the valid keys, never a silent default (bambi
issue 815): in a sensitivity study a prior that silently fell back would be fatal.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from trialsynth.core.settings import SamplerSettings
from trialsynth.models.analysis import AnalysisSpec, SpecError, load_spec
from trialsynth.models.spec import ModelError, ModelSpec
from trialsynth.priors.prior import PriorSet, parse_prior

MODELS = Path(__file__).resolve().parents[1] / "models"
SECTIONS = (
    "analysis, data, model, priors, sampler, output, cumulative, bias_adjustment, "
    "sensitivity, queries"
)
TAU_VALID = (
    "half-normal(sigma), half-cauchy(beta), half-t(nu, sigma), uniform(lower, upper), "
    "log-normal(mu, sigma), exponential(lam), gamma(alpha, beta), inverse-gamma(alpha, beta), "
    "uniform-shrinkage, "
    "dumouchel, turner(OUTCOME, COMPARISON), prefixes tau2: and precision: "
    "(e.g. tau2:uniform(0, 50), precision:gamma(0.001, 0.001))"
)
MINIMAL = '[data]\nsource = "ivig_rm"\n'
NO_SOURCE = ": [data] source is required (a CSV path or a shipped dataset name)"


def write_spec(tmp_path: Path, text: str | bytes, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def raises(message: str) -> pytest.RaisesContext[SpecError]:
    """Expect a SpecError whose message is exactly ``message``."""
    return pytest.raises(SpecError, match="^" + re.escape(message) + "$")


# ---------------------------------------------------------------------- shipped specs


@pytest.mark.parametrize("name", ["ivig_rm", "ivig_rm_secondary"])
def test_shipped_spec_loads_every_key(name) -> None:
    path = MODELS / f"{name}.toml"
    doc = tomllib.loads(path.read_text(encoding="utf-8"))  # what the researcher wrote
    spec = load_spec(path)
    assert isinstance(spec, AnalysisSpec)
    assert spec.path == path.resolve()
    assert spec.name == doc["analysis"]["name"] == name
    assert spec.title == doc["analysis"]["title"]
    assert spec.question == doc["analysis"]["question"]
    assert (spec.treatment, spec.control) == (
        doc["analysis"]["treatment"],
        doc["analysis"]["control"],
    )
    # a shipped dataset name is passed through, not turned into a path
    assert spec.source == doc["data"]["source"] == name
    assert spec.data_source() == name
    assert spec.model == doc["model"]["model"] == "binomial-normal"
    assert spec.priors == PriorSet(
        mu=parse_prior(doc["priors"]["mu"], "mu"),
        tau=parse_prior(doc["priors"]["tau"], "tau"),
        baseline=parse_prior(doc["priors"]["baseline"], "baseline"),
    )
    assert spec.sampler == SamplerSettings(**doc["sampler"])
    assert spec.out_dir == Path(doc["output"]["dir"])
    assert spec.output_dir() == Path(doc["output"]["dir"])
    assert spec.model_spec("arm") == ModelSpec(likelihood="binomial", random_effects="normal")


def test_shipped_ivig_rm_uses_the_documented_priors() -> None:
    # models/ivig_rm.toml comments: normal(0, 2.82), half-normal(0.5), normal(0, 5)
    spec = load_spec(MODELS / "ivig_rm.toml")
    assert spec.priors.to_dict() == {
        "mu": "normal(0, 2.82)",
        "tau": "half-normal(0.5)",
        "baseline": "normal(0, 5)",
        "beta": "normal(0, 10)",
        "nu": "gamma(2, 0.1)",
    }


def test_minimal_spec_gets_documented_defaults(tmp_path) -> None:
    spec = load_spec(write_spec(tmp_path, MINIMAL, name="my_analysis.toml"))
    assert spec.name == "my_analysis"  # the file stem
    assert spec.model == "binomial-normal"
    assert spec.priors == PriorSet()
    assert spec.sampler == SamplerSettings()
    assert spec.exclude == ()
    assert spec.columns == {}
    assert spec.out_dir is None
    assert spec.output_dir() == Path("reports/my_analysis")


def test_spec_options_are_read(tmp_path) -> None:
    text = """
[analysis]
name = "sens"
[data]
source = "trials.csv"
exclude = ["A 2001"]
columns = { Trial = "study" }
[model]
model = "normal-normal"
random_effects = "student-t"
nu = 5
[priors]
tau = "turner(obstetric, pharm-placebo)"
mu = "normal(0, 1)"
[sampler]
draws = 300
tune = 200
chains = 2
seed = 7
target_accept = 0.95
[output]
dir = "out/sens"
"""
    path = write_spec(tmp_path, text)
    spec = load_spec(path)
    # a relative CSV path is relative to the spec file, not to the working directory
    assert spec.data_source() == str((tmp_path / "trials.csv").resolve())
    assert spec.exclude == ("A 2001",)
    assert spec.columns == {"Trial": "study"}
    assert spec.nu == 5.0
    assert spec.priors.tau == parse_prior("tau2:log-normal(-3.52, 1.74)")
    assert spec.priors.mu == parse_prior("normal(0, 1)", "mu")
    assert spec.priors.baseline == PriorSet().baseline
    assert spec.sampler == SamplerSettings(
        draws=300, tune=200, chains=2, seed=7, target_accept=0.95
    )
    assert spec.output_dir() == Path("out/sens")
    assert spec.model_spec("contrast") == ModelSpec(
        likelihood="normal", random_effects="student-t", nu=5.0
    )


def test_unknown_model_name_is_an_error_when_used(tmp_path) -> None:
    spec = load_spec(write_spec(tmp_path, MINIMAL + '[model]\nmodel = "random-effects"\n'))
    with pytest.raises(
        ModelError,
        match=re.escape(
            "unknown model 'random-effects'; valid: binomial-normal, normal-normal, common-effect"
        ),
    ):
        spec.model_spec("arm")


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        (
            MINIMAL + '[prior]\ntau = "half-normal(1)"\n',
            f": unknown section [prior]; valid: {SECTIONS}",
        ),
        ('name = "x"\n' + MINIMAL, f": unknown section [name]; valid: {SECTIONS}"),
        ('[[data]]\nsource = "ivig_rm"\n', ": [data] must be a table"),
        (
            '[data]\nsorce = "ivig_rm"\n',
            " [data]: unknown key 'sorce'; valid: source, exclude, columns, outcome",
        ),
        (
            MINIMAL + '[model]\nrandom_effect = "student-t"\n',
            " [model]: unknown key 'random_effect'; valid: model, engine, likelihood,"
            " random_effects, nu, subgroup, subgroup_tau, covariates",
        ),
        (
            MINIMAL + "[sampler]\niterations = 100\n",
            " [sampler]: unknown key 'iterations'; valid: draws, tune, chains, seed, "
            "target_accept",
        ),
        (
            MINIMAL + '[output]\ndirectory = "x"\n',
            " [output]: unknown key 'directory'; valid: dir",
        ),
        # a misspelt prior key must never fall back to the default prior
        (
            MINIMAL + '[priors]\ntua = "half-cauchy(1)"\n',
            " [priors]: unknown key 'tua'; valid: mu, tau, baseline, beta, nu",
        ),
        (
            MINIMAL + '[priors]\nTau = "half-cauchy(1)"\n',
            " [priors]: unknown key 'Tau'; valid: mu, tau, baseline, beta, nu",
        ),
        (
            MINIMAL + '[priors]\ntau = "foo(1)"\n',
            f" [priors] tau: unknown prior 'foo' in 'foo(1)'; valid: {TAU_VALID}",
        ),
        (
            MINIMAL + '[priors]\ntau = "half-normal(-1)"\n',
            " [priors] tau: 'half-normal(-1)': parameter sigma must be > 0, got -1",
        ),
        (
            MINIMAL + '[priors]\nmu = "half-normal(1)"\n',
            " [priors] mu: 'half-normal(1)' is not a valid mu prior; valid: normal(mu, sigma), "
            "logistic(mu, s), student-t(nu, mu, sigma), uniform(lower, upper), flat()",
        ),
        (
            MINIMAL + '[priors]\nbaseline = "tau2:uniform(0, 50)"\n',
            " [priors] baseline: 'tau2:uniform(0, 50)': the tau2: prefix applies to heterogeneity "
            "priors only",
        ),
        (MINIMAL + '[sampler]\ndraws = "2000"\n', " [sampler] draws: expected int, got '2000'"),
        (MINIMAL + "[sampler]\ndraws = 2000.0\n", " [sampler] draws: expected int, got 2000.0"),
        (MINIMAL + "[sampler]\nchains = true\n", " [sampler] chains: expected int, got True"),
        (
            MINIMAL + "[sampler]\ntarget_accept = 1\n",
            " [sampler] target_accept: expected float, got 1",
        ),
        (
            MINIMAL + "[sampler]\ntarget_accept = 1.5\n",
            " [sampler]: target_accept must be in (0, 1), got 1.5",
        ),
        (MINIMAL + "[sampler]\ndraws = 0\n", " [sampler]: draws must be a positive integer, got 0"),
        (
            MINIMAL + "[sampler]\nseed = -1\n",
            " [sampler]: seed must be a non-negative integer, got -1",
        ),
        (MINIMAL + '[model]\nnu = "4"\n', " [model] nu: expected int or float, got '4'"),
        (
            MINIMAL.replace('"ivig_rm"', '"ivig_rm"\nexclude = "Stephenson 1998"'),
            " [data] exclude: expected list, got 'Stephenson 1998'",
        ),
        (MINIMAL + "[output]\ndir = 3\n", " [output] dir: expected str, got 3"),
        ("[analysis]\nname = 3\n" + MINIMAL, " [analysis] name: expected str, got 3"),
        ("[data]\nsource = 5\n", " [data] source: expected str, got 5"),
        (
            '[analysis]\nname = "x"\n',
            NO_SOURCE,
        ),
        ('[data]\nsource = ""\n', NO_SOURCE),
        ("", NO_SOURCE),
        (
            '[data\nsource = "ivig_rm"\n',
            ": invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)",
        ),
        (
            MINIMAL + 'source = "bcg"\n',
            ": invalid TOML: Cannot overwrite a value (at line 3, column 15)",
        ),
        (b"\xff\xfe[data]\n", ": not UTF-8 text"),
    ],
)  # fmt: skip
def test_bad_spec_message(tmp_path, text, rest) -> None:
    path = write_spec(tmp_path, text)
    with raises(f"{path}{rest}"):
        load_spec(path)
    # the message is one line (the CLI prints it as one)
    assert "\n" not in rest


def test_missing_spec_file(tmp_path) -> None:
    path = tmp_path / "nope.toml"
    with raises(f"{path}: spec file not found"):
        load_spec(path)
    with raises(f"{tmp_path}: spec file not found"):
        load_spec(tmp_path)  # a directory is not a spec


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)


def test_boolean_nu_is_a_type_error(tmp_path) -> None:
    path = write_spec(tmp_path, MINIMAL + "[model]\nnu = true\n")
    with raises(f"{path} [model] nu: expected int or float, got True"):
        load_spec(path)


# ---------------------------------------------------------------------- every problem at once


def test_every_problem_is_reported_at_once(tmp_path) -> None:
    text = (
        MINIMAL
        + '[priors]\ntua = "half-cauchy(1)"\nmu = "half-normal(1)"\n'
        + '[sampler]\ndraws = "2000"\nchains = 2.0\niterations = 5\n[prior]\nx = 1\n'
    )
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: 6 problems: ")
    parts = message.removeprefix(f"{path}: 6 problems: ").split(" | ")
    assert sorted(parts) == sorted(
        [
            "[priors] mu: 'half-normal(1)' is not a valid mu prior; valid: normal(mu, sigma), "
            "logistic(mu, s), student-t(nu, mu, sigma), uniform(lower, upper), flat()",
            "[priors]: unknown key 'tua'; valid: mu, tau, baseline, beta, nu",
            "[sampler] draws: expected int, got '2000'",
            "[sampler] chains: expected int, got 2.0",
            "[sampler]: unknown key 'iterations'; valid: draws, tune, chains, seed, target_accept",
            f"unknown section [prior]; valid: {SECTIONS}",
        ]
    )


def test_unknown_keys_of_one_table_are_one_problem(tmp_path) -> None:
    path = write_spec(
        tmp_path, MINIMAL + '[priors]\ntua = "half-cauchy(1)"\nmuu = "normal(0, 1)"\n'
    )
    with raises(f"{path} [priors]: unknown keys 'tua', 'muu'; valid: mu, tau, baseline, beta, nu"):
        load_spec(path)


def test_several_unknown_sections(tmp_path) -> None:
    path = write_spec(tmp_path, MINIMAL + "[prior]\nx = 1\n[sampling]\ny = 2\n")
    with raises(f"{path}: unknown sections [prior], [sampling]; valid: {SECTIONS}"):
        load_spec(path)
