#!/usr/bin/env Rscript
## Generate tests/reference/interface_reference.json: what R answers where
## issue 15 ("data in, data out, as an R user expects") asks lmelib to do as R:
## predictions on new data, glmer's deviance, R formula constructs, na.exclude,
## and the errors R gives for bad input.
## Run from the repository root:  Rscript tests/reference/make_interface_reference.R

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(nlme))

FACTORS[["orthodont.csv"]] <- c("Subject", "Sex")
FACTORS[["contraception.csv"]] <- c("woman", "district", "use", "livch", "urban")
FACTORS[["grouseticks.csv"]] <- c("INDEX", "BROOD", "YEAR", "LOCATION")
FACTORS[["epil.csv"]] <- c("trt", "subject")
FACTORS[["bodyweight.csv"]] <- c("Rat", "Diet")

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

## ------------------------------------------------------------------ names
## The names lme4 (lm, nlme's gls) gives the fixed effects, the columns of the
## random effects and the rows of confint and VarCorr, for formulas on the
## repository's data sets.  `python` is the text lmelib is given when it differs
## (Python's ** for R's ^): lmelib must still print R's names.

con <- load_data("contraception.csv")
con$use01 <- as.integer(con$use == "Y")
cbpp <- load_data("cbpp.csv")
names_entry <- function(id, kind, data, formula, d, python = formula, family = NULL, correlation = NULL) {
  f <- as.formula(formula)
  m <- suppressWarnings(suppressMessages(switch(kind,
    lmer = lmer(f, d, REML = FALSE),
    glmer = glmer(f, d, family = family),
    lm = lm(f, d),
    gls = gls(f, d, correlation = eval(parse(text = correlation))))))
  b <- if (kind %in% c("lmer", "glmer")) fixef(m) else coef(m)
  out <- list(id = id, kind = kind, data = data, formula = formula, python = python,
              family = family, correlation = correlation, factors = factor_cols(data), fixef = arr(names(b)),
              vcov = arr(rownames(vcov(m))))
  if (kind %in% c("lmer", "glmer")) {
    vc <- as.data.frame(VarCorr(m))
    out$varcorr <- list(grp = arr(vc$grp), var1 = arr(vc$var1), var2 = arr(vc$var2))
    out$ranef <- lapply(ranef(m), function(r) arr(colnames(r)))
    out$confint_wald <- arr(rownames(confint(m, method = "Wald")))
    out$coef_table <- arr(rownames(coef(summary(m))))
  }
  out
}
name_entries <- list(
  names_entry("contraception_ri", "glmer", "contraception.csv",
              "use01 ~ age + I(age^2) + urban + livch + (1 | district)", con,
              python = "use01 ~ age + I(age**2) + urban + livch + (1 | district)", family = "binomial"),
  names_entry("contraception_interaction_rs", "glmer", "contraception.csv",
              "use01 ~ age + I(age^2) + urban * livch + (urban | district)", con, family = "binomial"),
  names_entry("cbpp_period", "glmer", "cbpp.csv",
              "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family = "binomial"),
  names_entry("epil_transforms", "glmer", "epil.csv", "y ~ trt + log(base/4) + log(age) + V4 + (1 | subject)",
              load_data("epil.csv"), family = "poisson"),
  names_entry("grouseticks_year", "glmer", "grouseticks.csv", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
              load_data("grouseticks.csv"), family = "poisson"),
  names_entry("jsp_interaction", "lmer", "jsp.csv", "math5 ~ math3 * gender + social + (1 | school)", jsp),
  names_entry("jsp_no_intercept", "lmer", "jsp.csv", "math5 ~ 0 + gender + gender:math3 + (1 | school)", jsp),
  names_entry("jsp_poly_factor_slope", "lmer", "jsp.csv", "math5 ~ poly(math3, 2) + gender + (gender | school)", jsp),
  names_entry("sleepstudy_power", "lmer", "sleepstudy.csv", "Reaction ~ Days + I(Days^2) + (Days | Subject)",
              sleep, python = "Reaction ~ Days + I(Days**2) + (Days | Subject)"),
  names_entry("sleepstudy_uncorrelated", "lmer", "sleepstudy.csv", "Reaction ~ Days + (Days || Subject)", sleep),
  names_entry("orthodont_interaction", "lmer", "orthodont.csv", "distance ~ age * Sex + (age | Subject)", orth),
  names_entry("bodyweight_diet", "lmer", "bodyweight.csv", "weight ~ Time * Diet + (Time | Rat)",
              load_data("bodyweight.csv")),
  names_entry("produc_region", "lmer", "produc.csv", "log(gsp) ~ log(pc) + region + (1 | state)",
              load_data("produc.csv")),
  names_entry("jsp_social_lm", "lm", "jsp.csv", "math5 ~ math3 + social", jsp),
  names_entry("orthodont_gls", "gls", "orthodont.csv", "distance ~ age * Sex", orth,
              correlation = "corCompSymm(form = ~ 1 | Subject)")
)

## R's abbreviate(), as lme4's summary uses it for the correlation of the fixed
## effects (columns minlength 6, rows minlength 11), on every name above and on
## strings that exercise its rules (spaces, words, duplicates after shortening).
abbr_names <- unique(c(unlist(lapply(name_entries, function(e) e$fixef)),
                       "a b c d e", "AbcDef Ghijk", "standLRT:sexM", "sin(2 * pi * Time)",
                       "cos(2 * pi * Time)", "poly(Days, 2)1", "poly(Days, 2)2", "x", "TimeDay",
                       "aaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaa2", "  padded name  "))
abbreviations <- list(names = arr(abbr_names), minlength6 = arr(abbreviate(abbr_names, 6)),
                      minlength11 = arr(abbreviate(abbr_names, 11)))

## ---------------------------------------------------------- summary layout
## lme4's printed summary, line by line, for models whose printed figures
## lmelib reproduces (REML and ML lmer fits; a glmer, whose layout is compared).

summary_text <- function(m) arr(capture.output(print(summary(m))))
layouts <- list(
  list(id = "sleepstudy_rs", kind = "lmer", data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)",
       reml = TRUE, factors = factor_cols("sleepstudy.csv"), text = summary_text(m_sleep)),
  list(id = "jsp_twelve", kind = "lmer", data = "jsp.csv", formula = "math5 ~ math3 * gender + social + (1 | school)",
       reml = TRUE, factors = factor_cols("jsp.csv"),
       text = summary_text(lmer(math5 ~ math3 * gender + social + (1 | school), jsp))),
  list(id = "orthodont_three_slopes", kind = "lmer", data = "orthodont.csv",
       formula = "distance ~ age + Sex + (age + I(age^2) | Subject)", reml = FALSE,
       factors = factor_cols("orthodont.csv"),
       text = summary_text(suppressWarnings(suppressMessages(
         lmer(distance ~ age + Sex + (age + I(age^2) | Subject), orth, REML = FALSE))))),
  list(id = "contraception_rs", kind = "glmer", data = "contraception.csv", family = "binomial",
       formula = "use01 ~ age + I(age^2) + urban + livch + (urban | district)",
       factors = factor_cols("contraception.csv"),
       text = summary_text(suppressWarnings(glmer(use01 ~ age + I(age^2) + urban + livch + (urban | district),
                                                  con, family = binomial))))
)

out <- list(generated_by = generated_by(list(nlme = as.character(packageVersion("nlme")))),
            predict = predictions, predict_na_group = na_group, glmer_deviance = deviances,
            formulas = formulas, poly_newdata = poly_newdata, na_exclude = na_exclude, errors = errors,
            names = name_entries, abbreviate = abbreviations, summary_layout = layouts)
write_json_file(out, file.path(OUT_DIR, "interface_reference.json"))
