#!/usr/bin/env Rscript
## Generate tests/reference/r2_reference.json: Nakagawa and Schielzeth's
## marginal and conditional R² from performance::r2_nakagawa, with the variance
## components behind them (insight::get_variance), for lmer and glmer fits.
## Run from the repository root:  Rscript tests/reference/make_r2_reference.R  (~20 s)
## Needs the Debian package r-cran-performance (which brings insight).

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({
  library(performance)
  library(insight)
})

FACTORS[["grouseticks.csv"]] <- c("INDEX", "BROOD", "YEAR", "LOCATION")
FACTORS[["epil.csv"]]        <- c("trt", "subject")

## Derived columns (evaluated in the data frame after factor conversion).
DERIVED <- list(
  jsp_math3c = list(column = "math3c", r = "math3 - mean(math3)",
                    description = "math3 minus its mean over the 887 pupils of jsp.csv"),
  jsp_pass5 = list(column = "pass5", r = "as.integer(math5 >= 30)",
                   description = "1 if math5 >= 30, else 0")
)

## name, data, formula, reml (lmer) or family/link (glmer), derived columns.
MODELS <- list(
  list(name = "jsp_math3_ri", data = "jsp.csv", formula = "math5 ~ math3 + (1 | school)", reml = TRUE),
  list(name = "jsp_math3_ri_ml", data = "jsp.csv", formula = "math5 ~ math3 + (1 | school)", reml = FALSE),
  list(name = "jsp_social_ri", data = "jsp.csv", formula = "math5 ~ math3c + social + (1 | school)",
       reml = TRUE, derived = "jsp_math3c"),
  list(name = "jsp_math3c_rs", data = "jsp.csv", formula = "math5 ~ math3c + (math3c | school)",
       reml = TRUE, derived = "jsp_math3c"),
  list(name = "jsp_school_class", data = "jsp.csv", formula = "math5 ~ math3c + (1 | school/class)",
       reml = TRUE, derived = "jsp_math3c"),
  list(name = "sleepstudy_rs", data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)", reml = TRUE),
  list(name = "sleepstudy_rs_ml", data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)", reml = FALSE),
  list(name = "sleepstudy_rs_uncorr", data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days || Subject)", reml = TRUE),
  list(name = "orthodont_rs", data = "orthodont.csv", formula = "distance ~ age + Sex + (age | Subject)", reml = TRUE),
  list(name = "penicillin_crossed", data = "penicillin.csv", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", reml = TRUE),
  list(name = "pastes_nested", data = "pastes.csv", formula = "strength ~ 1 + (1 | batch/cask)", reml = TRUE),
  list(name = "produc_nested", data = "produc.csv", formula = "log(gsp) ~ log(pc) + unemp + (1 | region/state)", reml = TRUE),
  list(name = "cbpp_binom", data = "cbpp.csv", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "logit"),
  list(name = "cbpp_probit", data = "cbpp.csv", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "probit"),
  list(name = "jsp_pass5_ri", data = "jsp.csv", formula = "pass5 ~ math3c + (1 | school)",
       family = "binomial", link = "logit", derived = c("jsp_pass5", "jsp_math3c")),
  list(name = "grouseticks_no_olre", data = "grouseticks.csv",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", family = "poisson", link = "log"),
  list(name = "grouseticks_olre", data = "grouseticks.csv",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", family = "poisson", link = "log"),
  list(name = "epil_ri", data = "epil.csv", formula = "y ~ trt + log(base/4) + log(age) + V4 + (1 | subject)",
       family = "poisson", link = "log"),
  ## an offset in the formula: insight's null model (update() with the random
  ## terms only) leaves it out
  list(name = "cbpp_pois_offset", data = "cbpp.csv",
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)", family = "poisson", link = "log")
)

model_data <- function(spec) {
  d <- load_data(spec$data)
  for (dn in spec$derived) d[[DERIVED[[dn]]$column]] <- eval(parse(text = DERIVED[[dn]]$r), d)
  d
}

fit_model <- function(spec) {
  d <- model_data(spec)
  ## the data are passed as a variable (not a literal) so that insight's null
  ## model, which calls update(), finds them
  if (is.null(spec$family)) {
    lmer(as.formula(spec$formula), data = d, REML = spec$reml)
  } else {
    ## bobyqa in both stages, with tight tolerances: the default (Nelder_Mead in
    ## the second stage) stops up to 2.5e-3 short of the optimum on these data,
    ## which would blur a comparison of R². insight's null model (a refit by
    ## update()) uses the same control.
    glmer(as.formula(spec$formula), data = d, family = get(spec$family)(link = spec$link),
          control = glmerControl(optimizer = "bobyqa",
                                 optCtrl = list(maxfun = 1e5, rhoend = 1e-10)))
  }
}

num <- function(x) if (is.null(x) || length(x) == 0) NULL else as.numeric(x)

r2_json <- function(m, tolerance) {
  r <- with_conditions(r2_nakagawa(m, tolerance = tolerance))
  v <- with_conditions(get_variance(m, tolerance = tolerance))
  list(tolerance = tolerance,
       marginal = num(r$value$R2_marginal), conditional = num(r$value$R2_conditional),
       var_fixed = num(v$value$var.fixed), var_random = num(v$value$var.random),
       var_residual = num(v$value$var.residual), var_distribution = num(v$value$var.distribution),
       var_dispersion = num(v$value$var.dispersion),
       warnings = I(unique(c(r$warnings, v$warnings))), messages = I(unique(c(r$messages, v$messages))))
}

model_json <- function(spec) {
  fit <- with_conditions(fit_model(spec))
  m <- fit$value
  list(name = spec$name, data = spec$data, formula = spec$formula,
       kind = if (is.null(spec$family)) "lmer" else "glmer",
       reml = spec$reml, family = spec$family, link = spec$link,
       derived = unname(lapply(spec$derived, function(dn) DERIVED[[dn]])),
       factors = factor_cols(spec$data),
       theta = arr(getME(m, "theta")), fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
       sigma = sigma(m), singular = isSingular(m),
       objective = -2 * as.numeric(logLik(m)),
       fit_warnings = fit$warnings, fit_messages = fit$messages,
       ## performance's defaults (tolerance 1e-5: a singular fit gets NA) and
       ## tolerance 0 (the random variance is always computed)
       r2 = r2_json(m, 1e-5), r2_tol0 = r2_json(m, 0),
       ## an independent σ²_r for lmer fits: the mean over rows of z_i G z_iᵀ
       ## summed over all terms, trace(Z G Zᵀ)/n = σ² ‖Z Λθ‖²_F / n from lme4's
       ## own matrices (insight drops the second term of a `||` split; this does not)
       var_random_lme4 = if (is.null(spec$family))
         sigma(m)^2 * sum((getME(m, "Z") %*% getME(m, "Lambda"))^2) / nobs(m) else NULL)
}

out <- list(
  generated_by = generated_by(list(performance = as.character(packageVersion("performance")),
                                   insight = as.character(packageVersion("insight")))),
  models = lapply(MODELS, model_json))
write_json_file(out, file.path(OUT_DIR, "r2_reference.json"))
