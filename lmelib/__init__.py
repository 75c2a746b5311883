"""lmelib: linear mixed-effects models fitted as lme4 fits them, in readable Python.

>>> import lmelib
>>> m = lmelib.lmer("math5 ~ math3 + (1 | school)", lmelib.datasets.load_jsp())
>>> m.summary()

Modules, one per concept: ``formula`` (lme4 formula syntax), ``design``
(y, X and the Z terms), ``covariance`` (θ and Λθ), ``deviance`` (the profiled
deviance as a pure function of θ), ``optimize`` (BOBYQA and its record),
``entry`` (``lmer``: data in memory or on Dask), ``lmm`` (the fitted model), ``lm`` (least squares baselines),
``summary`` (printed output), ``anova`` (likelihood-ratio tests with
boundary-corrected p-values), ``simulate`` (simulation and the parametric
bootstrap), ``r2`` (Nakagawa and Schielzeth's R²), ``prediction`` (confidence and
prediction intervals), ``profile`` and ``confint`` (likelihood profiles and confidence
intervals), ``ddf`` (Satterthwaite and Kenward-Roger t tests), ``glmm`` and ``family`` (GLMMs), ``structures`` and ``gls``
(residual error structures), ``outofcore`` (``lmer`` on a Dask DataFrame; dask
is imported only when one is passed, so lmelib works without dask), ``blocksums`` (each
partition's blocks of [Z X y]ᵀ[Z X y] by bincount over level codes) and ``datasets`` (the course's data).
"""

from . import datasets, formatting
from .formatting import fmt, fmt_lik, fmt_p
from .anova import AnovaTable, anova
from .confint import confint
from .ddf import coef_table
from .profile import Profile, profile
from .simulate import BootstrapResult, bootstrap, simulate
from .deviance import ProfiledDeviance
from .formula import parse_formula
from .gls import GLSModel, gls
from .lm import LinearModel, lm
from .structures import AR1, ARMA, CAR1, CompSymm, VarExp, VarIdent, VarPower, plot_acf
from .glmm import GeneralizedLinearMixedModel, glmer
from .entry import lmer
from .lmm import LinearMixedModel
from .r2 import r2

__all__ = [
    "lmer",
    "r2",
    "lm",
    "glmer",
    "gls",
    "GLSModel",
    "AR1",
    "CAR1",
    "ARMA",
    "CompSymm",
    "VarIdent",
    "VarPower",
    "VarExp",
    "plot_acf",
    "GeneralizedLinearMixedModel",
    "LinearMixedModel",
    "LinearModel",
    "ProfiledDeviance",
    "parse_formula",
    "datasets",
    "anova",
    "AnovaTable",
    "simulate",
    "bootstrap",
    "BootstrapResult",
    "profile",
    "Profile",
    "confint",
    "coef_table",
    "formatting",
    "fmt",
    "fmt_lik",
    "fmt_p",
]

__version__ = "0.1.0"
