"""Response distributions and link functions for generalized linear mixed models.

A :class:`Family` bundles what PIRLS needs (McCullagh & Nelder's GLM
quantities): the link g and its inverse, dμ/dη, the variance function V(μ),
and the conditional log-density of the response, whose −2 × sum lme4 calls
``aic`` and adds to the Laplace approximation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.special as sc

__all__ = ["Link", "Family", "family", "LINKS"]

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Link:
    name: str
    linkfun: Callable[[np.ndarray], np.ndarray]
    linkinv: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]  # dμ/dη
    # (d²μ/dη²) / (dμ/dη) as a function of η, for the observed information of a link that is
    # not its family's canonical one (pirls.PIRLS's Newton steps); None for canonical links
    curvature: Callable[[np.ndarray], np.ndarray] | None = None


def _logit_inv(eta):
    return np.clip(sc.expit(eta), _EPS, 1 - _EPS)


def _logit_mu_eta(eta):
    p = sc.expit(eta)
    return np.maximum(p * (1 - p), _EPS)


LINKS = {
    "logit": Link("logit", sc.logit, _logit_inv, _logit_mu_eta),
    # the standard normal's quantile, cdf and density from scipy.special (what scipy.stats.norm
    # calls), so that importing lmelib does not import scipy.stats
    "probit": Link(
        "probit",
        sc.ndtri,
        lambda eta: np.clip(sc.ndtr(eta), _EPS, 1 - _EPS),
        lambda eta: np.maximum(np.exp(-0.5 * eta**2) / np.sqrt(2 * np.pi), _EPS),
        lambda eta: -eta,  # φ'(η) / φ(η)
    ),
    "cloglog": Link(
        "cloglog",
        lambda mu: np.log(-np.log1p(-mu)),
        lambda eta: np.clip(-np.expm1(-np.exp(eta)), _EPS, 1 - _EPS),
        lambda eta: np.maximum(np.exp(eta - np.exp(eta)), _EPS),
        lambda eta: 1.0 - np.exp(eta),  # d/dη log(exp(η − e^η))
    ),
    "log": Link("log", np.log, lambda eta: np.maximum(np.exp(eta), _EPS), lambda eta: np.maximum(np.exp(eta), _EPS)),
}


@dataclass(frozen=True)
class Family:
    name: str
    link: Link
    variance: Callable[[np.ndarray], np.ndarray]
    loglik: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # log p(y | μ), prior weights

    def unit_deviance(self, y, mu, wt) -> np.ndarray:
        """Deviance residuals squared: 2 [log p(y | y) − log p(y | μ)]."""
        return 2.0 * (self.loglik(y, np.clip(y, _EPS, None) if self.name == "poisson" else y, wt)
                      - self.loglik(y, mu, wt))

    def __str__(self) -> str:
        return f"{self.name} ( {self.link.name} )"


def _binomial_loglik(y, mu, wt):
    # y a proportion, wt the number of trials: log of dbinom(wt*y, wt, mu)
    k = np.round(wt * y)
    return (sc.gammaln(wt + 1) - sc.gammaln(k + 1) - sc.gammaln(wt - k + 1)
            + sc.xlogy(k, mu) + sc.xlog1py(wt - k, -mu))


def _poisson_loglik(y, mu, wt):
    return wt * (sc.xlogy(y, mu) - mu - sc.gammaln(y + 1))


_FAMILIES = {
    "binomial": ("logit", lambda mu: mu * (1 - mu), _binomial_loglik, ("logit", "probit", "cloglog")),
    "poisson": ("log", lambda mu: mu, _poisson_loglik, ("log",)),
}


def family(name: str, link: str | None = None) -> Family:
    """``family("binomial")`` (logit), ``family("binomial", "probit")``, ``family("poisson")`` (log)."""
    if name not in _FAMILIES:
        raise ValueError(f"family {name!r} is not supported; use one of {sorted(_FAMILIES)}")
    default, variance, loglik, allowed = _FAMILIES[name]
    link = default if link is None else link
    if link not in allowed:
        raise ValueError(f"link {link!r} is not available for the {name} family; use one of {list(allowed)}")
    return Family(name, LINKS[link], variance, loglik)
