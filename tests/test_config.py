"""The one config base (tf_impl/config.py): every technique's frozen config derives from it and
behaves the same on presets, copies, records and bad values."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil

import pytest

import tf_impl
from tf_impl.attribution.common import AttributionError
from tf_impl.attribution.integrated_gradients import IntegratedGradientsConfig
from tf_impl.config import ConfigError, TechniqueConfig
from tf_impl.gradient_inversion.gradinversion import GradInversionConfig
from tf_impl.gradient_inversion.inverting_gradients import PAPER_STEPS, InvertingGradientsConfig
from tf_impl.gradient_inversion.victim import GradientInversionError
from tf_impl.hdr_gan import HDRGANConfig
from tf_impl.optimize import OptimizeConfig
from tf_impl.visualization.checks import VisualizationError
from tf_impl.visualization.fast_style import FastStyleConfig, FastStyleError
from tf_impl.visualization.patches import PatchesConfig


def _config_classes() -> list[type]:
    """Every frozen dataclass named ``*Config`` defined in tf_impl (the CLI package aside)."""
    found = {}
    for info in pkgutil.walk_packages(tf_impl.__path__, "tf_impl."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (isinstance(obj, type) and name.endswith("Config") and obj.__module__ == info.name
                    and dataclasses.is_dataclass(obj)):
                found[f"{info.name}.{name}"] = obj
    return [found[k] for k in sorted(found)]


CONFIGS = _config_classes()


def test_every_config_derives_from_the_one_base():
    assert len(CONFIGS) >= 20  # the techniques' configs were found at all
    strays = [c.__qualname__ for c in CONFIGS if not issubclass(c, TechniqueConfig)]
    assert strays == []
    not_frozen = [c.__qualname__ for c in CONFIGS if not c.__dataclass_params__.frozen]
    assert not_frozen == []


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_defaults_round_trip_through_json(cls):
    cfg = cls()
    record = json.loads(json.dumps(cfg.to_dict(), default=list))
    assert cls.from_dict(record) == cfg


@pytest.mark.parametrize("cls, error", [
    (IntegratedGradientsConfig, AttributionError),
    (FastStyleConfig, FastStyleError),
    (PatchesConfig, VisualizationError),
    (InvertingGradientsConfig, GradientInversionError),
    (OptimizeConfig, ConfigError),
])
def test_unknown_field_is_refused_with_a_suggestion(cls, error):
    field = next(f.name for f in dataclasses.fields(cls) if len(f.name) > 3)
    typo = field[:-1]
    with pytest.raises(error, match=rf"has no field '{typo}' \(did you mean '{field}'\?\)"):
        cls().with_(**{typo: 1})
    with pytest.raises(error, match="another version"):
        cls.from_dict({**cls().to_dict(), "no_such_field": 1})


@pytest.mark.parametrize("make, error, message", [
    (lambda: InvertingGradientsConfig(restarts="3"), GradientInversionError,
     r"InvertingGradientsConfig.restarts must be an integer; got '3'"),
    (lambda: IntegratedGradientsConfig(steps=2.5), AttributionError,
     r"steps must be an integer; got 2.5"),
    (lambda: PatchesConfig(k=True), VisualizationError, r"k must be an integer; got True"),
    (lambda: OptimizeConfig(learning_rate="0.1"), ConfigError, r"learning_rate must be a number"),
    (lambda: OptimizeConfig(max_seconds="60"), ConfigError, r"must be a number or None"),
    (lambda: OptimizeConfig(compile=1), ConfigError, r"compile must be True or False"),
    (lambda: InvertingGradientsConfig().with_(steps="10"), ConfigError,
     r"OptimizeConfig.steps must be an integer"),
])
def test_a_value_of_the_wrong_kind_is_refused_by_name(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_numbers_of_the_right_kind_pass():
    import numpy as np

    assert OptimizeConfig(learning_rate=1, steps=np.int64(3), max_seconds=None).steps == 3
    assert OptimizeConfig(max_seconds=5).max_seconds == 5


def test_with_routes_optimiser_fields_and_own_fields_win():
    cfg = InvertingGradientsConfig().with_(steps=7, tv_weight=0.5)
    assert (cfg.optimize.steps, cfg.tv_weight) == (7, 0.5)
    # HDR-GAN's display gamma and the step schedule's gamma share a name: the own field wins
    hdr = HDRGANConfig().with_(gamma=2.4)
    assert hdr.gamma == 2.4 and hdr.optimize.gamma == HDRGANConfig().optimize.gamma


def test_presets():
    assert InvertingGradientsConfig.quick() == InvertingGradientsConfig()
    assert InvertingGradientsConfig.paper().optimize.steps == PAPER_STEPS
    assert InvertingGradientsConfig.paper(steps=5).optimize.steps == 5  # changes come last
    gi = GradInversionConfig.paper()
    assert (gi.seeds, gi.priors, gi.optimize.steps) == (8, "mean", 20_000)
    # a technique whose paper settings are its defaults
    assert FastStyleConfig.paper() == FastStyleConfig() == FastStyleConfig.quick()
