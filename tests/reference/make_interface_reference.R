#!/usr/bin/env Rscript
## Generate tests/reference/interface_reference.json: what R answers where
## issue 15 ("data in, data out, as an R user expects") asks lmelib to do as R:
## predictions on new data, glmer's deviance, R formula constructs, na.exclude,
## and the errors R gives for bad input.
## Run from the repository root:  Rscript tests/reference/make_interface_reference.R

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(nlme))

FACTORS[["orthodont.csv"]] <- c("Subject", "Sex")

## The error message of expr (NULL if none), with its warnings and messages.
error_of <- function(expr) {
  res <- tryCatch(with_conditions(expr), error = function(e) list(error = conditionMessage(e)))
  list(error = if (is.null(res$error)) NULL else res$error,
       warnings = if (is.null(res$warnings)) I(character(0)) else res$warnings,
       messages = if (is.null(res$messages)) I(character(0)) else res$messages)
}

fixef_json <- function(b) list(names = arr(names(b)), values = arr(as.numeric(b)))

newdata_json <- function(nd) {
  cols <- lapply(nd, function(v) if (is.factor(v)) arr(as.character(v)) else arr(v))
  names(cols) <- names(nd)
  cols
}

## ------------------------------------------------------------ predictions
## newdata are given in R's types (factors as text); the Python tests pass
## them as int, str and categories in another order and expect R's answers.

cbpp <- load_data("cbpp.csv")
sleep <- load_data("sleepstudy.csv")
jsp <- load_data("jsp.csv")
orth <- load_data("orthodont.csv")

g_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
nd_cbpp <- data.frame(period = factor(c(1, 4, 2, 3), levels = 1:4), herd = factor(c(1, 1, 7, 99)))
m_sleep <- lmer(Reaction ~ Days + (Days | Subject), sleep)
nd_sleep <- data.frame(Days = c(0, 5, 9, 2), Subject = factor(c(308, 309, 372, 999)))
m_jsp <- lmer(math5 ~ math3 + social + (1 | school), jsp)
nd_jsp <- data.frame(math3 = c(20, 25, 30, 10), social = factor(c(9, 1, 4, 2)),
                     school = factor(c(1, 2, 48, 100)))
l_jsp <- lm(math5 ~ math3 + social, jsp)
g_orth <- gls(distance ~ age + Sex, orth, correlation = corCompSymm(form = ~ 1 | Subject))
nd_orth <- data.frame(age = c(8, 14, 10), Sex = factor(c("Male", "Female", "Female")))

predict_entry <- function(id, kind, data, formula, m, nd, extra = list()) {
  out <- list(id = id, kind = kind, data = data, formula = formula,
              factors = factor_cols(data), newdata = newdata_json(nd))
  if (kind == "glmer") {
    out$re <- arr(predict(m, nd, type = "response", allow.new.levels = TRUE))
    out$fixed_only <- arr(predict(m, nd, type = "response", re.form = NA))
  } else if (kind == "lmer") {
    out$re <- arr(predict(m, nd, allow.new.levels = TRUE))
    out$fixed_only <- arr(predict(m, nd, re.form = NA))
  } else {
    out$fixed_only <- arr(predict(m, nd))
  }
  out$fixef <- fixef_json(if (kind %in% c("lmer", "glmer")) fixef(m) else coef(m))
  c(out, extra)
}

predictions <- list(
  predict_entry("cbpp_period", "glmer", "cbpp.csv",
                "cbind(incidence, size - incidence) ~ period + (1 | herd)", g_cbpp, nd_cbpp,
                list(family = "binomial", type = "response")),
  predict_entry("sleepstudy_rs", "lmer", "sleepstudy.csv", "Reaction ~ Days + (Days | Subject)",
                m_sleep, nd_sleep),
  predict_entry("jsp_social", "lmer", "jsp.csv", "math5 ~ math3 + social + (1 | school)", m_jsp, nd_jsp),
  predict_entry("jsp_social_lm", "lm", "jsp.csv", "math5 ~ math3 + social", l_jsp, nd_jsp),
  predict_entry("orthodont_gls_cs", "gls", "orthodont.csv", "distance ~ age + Sex", g_orth, nd_orth,
                list(correlation = "corCompSymm(form = ~ 1 | Subject)"))
)

## A missing grouping value in newdata: lme4 gives the population prediction.
nd_na <- data.frame(Days = c(3, 3), Subject = factor(c(308, NA), levels = levels(sleep$Subject)))
na_group <- list(newdata = newdata_json(nd_na),
                 re = arr(predict(m_sleep, nd_na, allow.new.levels = TRUE)),
                 fixed_only = arr(predict(m_sleep, nd_na, re.form = NA)))

## --------------------------------------------------------- glmer deviance

cbpp_num <- cbpp
cbpp_num$period <- as.numeric(as.character(cbpp_num$period))
deviance_entry <- function(id, formula, data, d, nAGQ) {
  m <- glmer(as.formula(formula), d, family = binomial, nAGQ = nAGQ)
  y <- m@resp$y; n <- m@resp$n
  sat <- -2 * sum(dbinom(round(y * n), n, y, log = TRUE))
  list(id = id, data = data, formula = formula, nAGQ = nAGQ,
       numeric_columns = if (id == "cbpp_numeric_period") I("period") else I(character(0)),
       deviance = deviance(m), minus2loglik = -2 * as.numeric(logLik(m)),
       minus2loglik_saturated = sat, theta = arr(getME(m, "theta")), fixef = fixef_json(fixef(m)),
       sum_dev_resid_sq = sum(residuals(m, "deviance")^2))
}
deviances <- list(
  deviance_entry("cbpp_period", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 "cbpp.csv", cbpp, 1),
  deviance_entry("cbpp_numeric_period", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 "cbpp.csv", cbpp_num, 1),
  deviance_entry("cbpp_period_agq9", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 "cbpp.csv", cbpp, 9)
)

## ----------------------------------------------------------- R formulas

sleep_bt <- sleep
names(sleep_bt)[names(sleep_bt) == "Subject"] <- "my subject"
formula_entry <- function(id, data, formula, d, python = formula) {
  m <- lmer(as.formula(formula), d, REML = FALSE)
  list(id = id, data = data, formula = formula, python = python, factors = factor_cols(data),
       objective = deviance(m), fixef = fixef_json(fixef(m)), theta = arr(getME(m, "theta")),
       fitted_head = arr(head(fitted(m), 5)))
}
formulas <- list(
  formula_entry("power", "sleepstudy.csv", "Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep),
  formula_entry("factor", "sleepstudy.csv", "Reaction ~ factor(Days) + (1 | Subject)", sleep),
  formula_entry("poly", "sleepstudy.csv", "Reaction ~ poly(Days, 2) + (1 | Subject)", sleep),
  formula_entry("log_transform", "sleepstudy.csv", "Reaction ~ log(Days + 1) + (1 | Subject)", sleep),
  formula_entry("offset", "sleepstudy.csv", "Reaction ~ Days + offset(2 * Days) + (1 | Subject)", sleep),
  formula_entry("backtick_group", "sleepstudy.csv", "Reaction ~ Days + (1 | `my subject`)", sleep_bt)
)
poly_newdata <- list(Days = arr(c(0.5, 4, 11)),
                     fixed_only = arr(predict(lmer(Reaction ~ poly(Days, 2) + (1 | Subject), sleep, REML = FALSE),
                                              data.frame(Days = c(0.5, 4, 11)), re.form = NA)))

## ------------------------------------------------------------- na.exclude

sleep_na <- sleep
sleep_na$Reaction[c(4, 6)] <- NA
m_excl <- lmer(Reaction ~ Days + (Days | Subject), sleep_na, na.action = na.exclude)
m_omit <- lmer(Reaction ~ Days + (Days | Subject), sleep_na)
na_exclude <- list(rows_na = arr(c(4, 6)),
                   fitted_exclude_head = arr(head(fitted(m_excl), 8)),
                   resid_exclude_head = arr(head(residuals(m_excl), 8)),
                   fitted_omit_head = arr(head(fitted(m_omit), 8)),
                   fitted_omit_names = arr(head(names(fitted(m_omit)), 8)),
                   n_exclude = length(fitted(m_excl)), n_omit = length(fitted(m_omit)))

## ----------------------------------------------------------------- errors

sleep_inf <- sleep; sleep_inf$Reaction[1] <- Inf
sleep_const <- sleep; sleep_const$Reaction <- 300
tiny <- data.frame(y = c(1, 2, 4), x = c(1, 2, 3), z = c(0, 1, 5))
errors <- list(
  new_factor_level = c(list(id = "new_factor_level", formula = "math5 ~ math3 + social"),
    error_of(predict(l_jsp, data.frame(math3 = 20, social = factor(10))))),
  log_zero = c(list(id = "log_zero", formula = "Reaction ~ log(Days) + (1 | Subject)"),
    error_of(lmer(Reaction ~ log(Days) + (1 | Subject), sleep))),
  log_zero_random = c(list(id = "log_zero_random", formula = "Reaction ~ Days + (log(Days) | Subject)"),
    error_of(lmer(Reaction ~ Days + (log(Days) | Subject), sleep))),
  inf_response = c(list(id = "inf_response", formula = "Reaction ~ Days + (1 | Subject)"),
    error_of(lmer(Reaction ~ Days + (1 | Subject), sleep_inf))),
  constant_response = c(list(id = "constant_response", formula = "Reaction ~ Days + (1 | Subject)"),
    error_of(lmer(Reaction ~ Days + (1 | Subject), sleep_const))),
  empty_bar = c(list(id = "empty_bar", formula = "Reaction ~ Days + (| Subject)"),
    error_of(parse(text = "Reaction ~ Days + (| Subject)"))),
  lm_zero_df = list(id = "lm_zero_df", formula = "y ~ x + z", data = list(y = arr(tiny$y), x = arr(tiny$x),
                                                                        z = arr(tiny$z)),
                    sigma = sigma(lm(y ~ x + z, tiny)), df_residual = df.residual(lm(y ~ x + z, tiny)))
)
const_fit <- tryCatch(suppressWarnings(lmer(Reaction ~ Days + (1 | Subject), sleep_const)),
                      error = function(e) NULL)
if (!is.null(const_fit)) {
  errors$constant_response$sigma <- sigma(const_fit)
  errors$constant_response$theta <- arr(getME(const_fit, "theta"))
  errors$constant_response$fixef <- fixef_json(fixef(const_fit))
}

out <- list(generated_by = generated_by(list(nlme = as.character(packageVersion("nlme")))),
            predict = predictions, predict_na_group = na_group, glmer_deviance = deviances,
            formulas = formulas, poly_newdata = poly_newdata, na_exclude = na_exclude, errors = errors)
write_json_file(out, file.path(OUT_DIR, "interface_reference.json"))
