#!/usr/bin/env Rscript
## Generate tests/reference/inference_reference.json: likelihood-ratio anova
## tables, profile and Wald confidence intervals (lme4), and Satterthwaite /
## Kenward-Roger t-tests (lmerTest + pbkrtest).
## Run from the repository root:  Rscript tests/reference/make_inference_reference.R

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({
  library(lmerTest)   # masks lme4::lmer; lme4 fits below use lme4::lmer explicitly
  library(pbkrtest)
})

## Model specifications. Names match lmer_reference.json (plus _reml / _ml).
SPECS <- list(
  jsp_ri               = list(data = "jsp.csv",        formula = "math5 ~ 1 + (1 | school)"),
  jsp_math3_ri         = list(data = "jsp.csv",        formula = "math5 ~ math3 + (1 | school)"),
  jsp_math3_rs         = list(data = "jsp.csv",        formula = "math5 ~ math3 + (math3 | school)"),
  jsp_math3_rs_uncorr  = list(data = "jsp.csv",        formula = "math5 ~ math3 + (math3 || school)"),
  sleepstudy_rs        = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)"),
  sleepstudy_rs_uncorr = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days || Subject)"),
  dyestuff_ri          = list(data = "dyestuff.csv",   formula = "Yield ~ 1 + (1 | Batch)"),
  penicillin_crossed   = list(data = "penicillin.csv", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  penicillin_plate     = list(data = "penicillin.csv", formula = "diameter ~ 1 + (1 | plate)"),
  pastes_nested        = list(data = "pastes.csv",     formula = "strength ~ 1 + (1 | batch/cask)"),
  orthodont_rs         = list(data = "orthodont.csv",  formula = "distance ~ age + Sex + (age | Subject)"),
  orthodont_ri         = list(data = "orthodont.csv",  formula = "distance ~ age + Sex + (1 | Subject)"),
  orthodont_rs_nosex   = list(data = "orthodont.csv",  formula = "distance ~ age + (age | Subject)"),
  ## lme4's default optimizer stops short of the optimum for jsp_math3_rs
  ## (see README); these are the jsp models refitted with optimizer = "bobyqa".
  jsp_ri_bobyqa              = list(data = "jsp.csv", formula = "math5 ~ 1 + (1 | school)", optimizer = "bobyqa"),
  jsp_math3_ri_bobyqa        = list(data = "jsp.csv", formula = "math5 ~ math3 + (1 | school)", optimizer = "bobyqa"),
  jsp_math3_rs_bobyqa        = list(data = "jsp.csv", formula = "math5 ~ math3 + (math3 | school)", optimizer = "bobyqa"),
  jsp_math3_rs_uncorr_bobyqa = list(data = "jsp.csv", formula = "math5 ~ math3 + (math3 || school)", optimizer = "bobyqa")
)
LM_SPECS <- list(
  jsp_math3_lm = list(data = "jsp.csv", formula = "math5 ~ math3")
)

full_name <- function(base, reml) paste0(base, if (reml) "_reml" else "_ml")

model_keys <- function(base, reml) {
  s <- SPECS[[base]]
  list(name = full_name(base, reml), base = base, data = s$data,
       formula = s$formula, reml = reml,
       control = if (is.null(s$optimizer)) NULL else list(optimizer = s$optimizer),
       factors = factor_cols(s$data))
}

## Data frames are bound to symbols (jsp, sleepstudy, ...) and models are fitted
## through calls like lmer(<formula>, data = jsp, REML = TRUE), so that
## getCall(m)$data is the same symbol for lm and lmer fits (lme4's anova
## refuses models whose calls name different data objects).
DATA_ENV <- new.env()
data_sym <- function(file) {
  nm <- sub("\\.csv$", "", file)
  if (!exists(nm, envir = DATA_ENV, inherits = FALSE)) assign(nm, load_data(file), envir = DATA_ENV)
  as.name(nm)
}

## Fits live in an environment under their full names so that anova() row
## names are the model names.
FITS <- new.env()
FIT_COND <- list()
get_fit <- function(base, reml, pkg = c("lme4", "lmerTest")) {
  pkg <- match.arg(pkg)
  key <- if (pkg == "lme4") full_name(base, reml) else paste0(full_name(base, reml), "_lmerTest")
  if (!exists(key, envir = FITS, inherits = FALSE)) {
    s <- SPECS[[base]]
    f <- if (pkg == "lme4") quote(lme4::lmer) else quote(lmerTest::lmer)
    args <- list(f, as.formula(s$formula), data = data_sym(s$data), REML = reml)
    if (!is.null(s$optimizer))
      args$control <- call("lmerControl", optimizer = s$optimizer)
    cl <- as.call(args)
    r <- with_conditions(eval(cl, envir = DATA_ENV))
    assign(key, r$value, envir = FITS)
    FIT_COND[[key]] <<- r
  }
  get(key, envir = FITS)
}
get_lm <- function(base) {
  if (!exists(base, envir = FITS, inherits = FALSE)) {
    s <- LM_SPECS[[base]]
    cl <- as.call(list(quote(stats::lm), as.formula(s$formula), data = data_sym(s$data)))
    assign(base, eval(cl, envir = DATA_ENV), envir = FITS)
  }
  get(base, envir = FITS)
}
fit_conditions <- function(key) {
  r <- FIT_COND[[key]]
  list(warnings = r$warnings, messages = r$messages)
}

safely <- function(expr) {
  r <- tryCatch(with_conditions(expr),
                error = function(e) list(value = NULL, error = conditionMessage(e),
                                         warnings = I(character(0)), messages = I(character(0))))
  r
}

## ---- (1) anova tables --------------------------------------------------
## Each entry: models (in the order passed to anova), the call, refit flag and
## the full table (row names are the model names as passed).
anova_entry <- function(id, description, models, refit = TRUE, lms = character(0),
                        order = NULL) {
  ## models: list of list(base, reml); lms: names of lm fits; order: the
  ## argument order as a character vector of object names (default: lmer
  ## models in order, then lms).
  mod_info <- lapply(models, function(x) {
    m <- get_fit(x$base, x$reml)
    c(model_keys(x$base, x$reml),
      list(kind = "lmer", loglik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
           objective = unname(m@devcomp$cmp[if (x$reml) "REML" else "dev"]),
           deviance_ml = unname(m@devcomp$cmp["dev"])),   # NA for REML fits
      fit_conditions(full_name(x$base, x$reml)))
  })
  lm_info <- lapply(lms, function(b) {
    m <- get_lm(b)
    s <- LM_SPECS[[b]]
    list(name = b, data = s$data, formula = s$formula, kind = "lm",
         loglik = as.numeric(logLik(m)), loglik_reml = as.numeric(logLik(m, REML = TRUE)),
         df = attr(logLik(m), "df"))
  })
  args <- if (is.null(order)) c(vapply(models, function(x) full_name(x$base, x$reml), ""), lms) else order
  call_args <- lapply(args, as.name)
  if (!identical(refit, TRUE)) call_args$refit <- refit
  cl <- as.call(c(list(as.name("anova")), call_args))
  r <- safely(eval(cl, envir = FITS))
  out <- list(id = id, description = description,
              call = paste(deparse(cl, width.cutoff = 500L), collapse = " "),
              models = c(mod_info, lm_info), refit = refit)
  ## keys are always present; null when not applicable
  ok <- is.null(r$error)
  out["error"] <- list(r$error)
  out["heading"] <- list(if (ok) arr(attr(r$value, "heading")) else NULL)
  out["table"] <- list(if (ok) table_json(r$value) else NULL)
  out["refitted_ml"] <- list(if (ok) any(grepl("refitting model", r$messages)) else NULL)
  out$warnings <- r$warnings
  out$messages <- r$messages
  out
}

anovas <- list()
add <- function(x) anovas[[length(anovas) + 1]] <<- x
RE3 <- function(reml) list(list(base = "jsp_math3_ri", reml = reml),
                           list(base = "jsp_math3_rs_uncorr", reml = reml),
                           list(base = "jsp_math3_rs", reml = reml))
add(anova_entry("jsp_re_structure_ml", "jsp random-effects structure: (1|school) vs (math3||school) vs (math3|school), ML fits", RE3(FALSE)))
add(anova_entry("jsp_re_structure_reml_refit", "same, REML fits with anova's default refit=TRUE (lme4 refits with ML)", RE3(TRUE)))
add(anova_entry("jsp_re_structure_reml_norefit", "same, REML fits with refit=FALSE (compares REML criteria)", RE3(TRUE), refit = FALSE))
add(anova_entry("jsp_ri_vs_rs_ml", "jsp (1|school) vs (math3|school), ML fits",
                list(list(base = "jsp_math3_ri", reml = FALSE), list(base = "jsp_math3_rs", reml = FALSE))))
add(anova_entry("jsp_fixed_math3_ml", "jsp fixed effect math3: math5 ~ 1 + (1|school) vs math5 ~ math3 + (1|school), ML fits",
                list(list(base = "jsp_ri", reml = FALSE), list(base = "jsp_math3_ri", reml = FALSE))))
add(anova_entry("jsp_lmer_vs_lm_ml", "anova(lmer ML, lm): lmer math5 ~ math3 + (1|school) (ML) vs lm math5 ~ math3",
                list(list(base = "jsp_math3_ri", reml = FALSE)), lms = "jsp_math3_lm"))
add(anova_entry("jsp_lm_vs_lmer_ml", "anova(lm, lmer ML): lm first (dispatches to anova.lm)",
                list(list(base = "jsp_math3_ri", reml = FALSE)), lms = "jsp_math3_lm",
                order = c("jsp_math3_lm", "jsp_math3_ri_ml")))
add(anova_entry("jsp_lmer_vs_lm_reml_refit", "anova(lmer REML, lm) with default refit=TRUE",
                list(list(base = "jsp_math3_ri", reml = TRUE)), lms = "jsp_math3_lm"))
RE3B <- function(reml) list(list(base = "jsp_math3_ri_bobyqa", reml = reml),
                            list(base = "jsp_math3_rs_uncorr_bobyqa", reml = reml),
                            list(base = "jsp_math3_rs_bobyqa", reml = reml))
add(anova_entry("jsp_re_structure_ml_bobyqa", "as jsp_re_structure_ml, all fits with optimizer = 'bobyqa' (reaches the optimum for (math3|school))", RE3B(FALSE)))
add(anova_entry("jsp_re_structure_reml_norefit_bobyqa", "as jsp_re_structure_reml_norefit, all fits with optimizer = 'bobyqa'", RE3B(TRUE), refit = FALSE))
SS2 <- function(reml) list(list(base = "sleepstudy_rs_uncorr", reml = reml), list(base = "sleepstudy_rs", reml = reml))
add(anova_entry("sleepstudy_uncorr_vs_corr_ml", "sleepstudy (Days||Subject) vs (Days|Subject), ML fits", SS2(FALSE)))
add(anova_entry("sleepstudy_uncorr_vs_corr_reml_refit", "same, REML fits, default refit=TRUE", SS2(TRUE)))
add(anova_entry("sleepstudy_uncorr_vs_corr_reml_norefit", "same, REML fits, refit=FALSE", SS2(TRUE), refit = FALSE))
OR2 <- function(reml) list(list(base = "orthodont_ri", reml = reml), list(base = "orthodont_rs", reml = reml))
add(anova_entry("orthodont_ri_vs_rs_ml", "orthodont (1|Subject) vs (age|Subject), fixed age + Sex, ML fits", OR2(FALSE)))
add(anova_entry("orthodont_ri_vs_rs_reml_norefit", "same, REML fits, refit=FALSE", OR2(TRUE), refit = FALSE))
add(anova_entry("orthodont_sex_ml", "orthodont fixed effect Sex: distance ~ age + (age|Subject) vs + Sex, ML fits",
                list(list(base = "orthodont_rs_nosex", reml = FALSE), list(base = "orthodont_rs", reml = FALSE))))
add(anova_entry("orthodont_sex_reml_refit", "same, REML fits, default refit=TRUE",
                list(list(base = "orthodont_rs_nosex", reml = TRUE), list(base = "orthodont_rs", reml = TRUE))))
PN2 <- function(reml) list(list(base = "penicillin_plate", reml = reml), list(base = "penicillin_crossed", reml = reml))
add(anova_entry("penicillin_plate_vs_crossed_ml", "penicillin (1|plate) vs (1|plate)+(1|sample), ML fits", PN2(FALSE)))
add(anova_entry("penicillin_plate_vs_crossed_reml_norefit", "same, REML fits, refit=FALSE", PN2(TRUE), refit = FALSE))
cat("anova tables:", length(anovas), "\n")

## ---- (2) confidence intervals ------------------------------------------
CI_MODELS <- c("jsp_math3_ri", "jsp_math3_rs", "jsp_math3_rs_bobyqa", "sleepstudy_rs", "dyestuff_ri", "penicillin_crossed")
cis <- list()
for (base in CI_MODELS) for (reml in c(TRUE, FALSE)) {
  m <- get_fit(base, reml)
  t0 <- Sys.time()
  prof <- safely(confint(m, method = "profile", level = 0.95))
  wald <- safely(confint(m, method = "Wald", level = 0.95))
  e <- c(model_keys(base, reml), fit_conditions(full_name(base, reml)))
  e$level <- 0.95
  e["profile"] <- list(if (is.null(prof$error)) table_json(prof$value) else NULL)
  e["profile_error"] <- list(prof$error)
  ## profiling can emit hundreds of repeated warnings: keep the distinct ones
  e$profile_warnings <- arr(unique(prof$warnings))
  e$profile_warning_count <- length(prof$warnings)
  e$profile_messages <- arr(unique(prof$messages))
  e["wald"] <- list(if (is.null(wald$error)) table_json(wald$value) else NULL)
  e["wald_error"] <- list(wald$error)
  e$wald_warnings <- wald$warnings
  cat(sprintf("confint %-28s %.1fs profile warnings=%d%s\n", e$name,
              as.numeric(difftime(Sys.time(), t0, units = "secs")),
              length(prof$warnings), if (is.null(prof$error)) "" else paste(" ERROR:", prof$error)))
  cis[[length(cis) + 1]] <- e
}

## ---- (3) Satterthwaite and (4) Kenward-Roger (lmerTest) ---------------------
DDF_MODELS <- c("jsp_math3_ri", "jsp_math3_rs", "jsp_math3_rs_bobyqa", "sleepstudy_rs",
                "orthodont_rs", "penicillin_crossed", "pastes_nested")
ddf_entry <- function(base, ddf) {
  m <- get_fit(base, TRUE, pkg = "lmerTest")
  key <- paste0(full_name(base, TRUE), "_lmerTest")
  s <- safely(summary(m, ddf = ddf))
  a <- safely(anova(m, ddf = ddf, type = 3))
  e <- c(model_keys(base, TRUE), fit_conditions(key))
  e$ddf <- ddf
  e["coefficients"] <- list(if (is.null(s$error)) table_json(s$value$coefficients) else NULL)
  e["error"] <- list(s$error)
  e$warnings_summary <- s$warnings
  e$messages_summary <- s$messages
  e["anova_type3"] <- list(if (is.null(a$error)) table_json(a$value) else NULL)
  e["anova_error"] <- list(a$error)
  e$warnings_anova <- a$warnings
  e
}
satt <- lapply(DDF_MODELS, ddf_entry, ddf = "Satterthwaite")
kr <- lapply(DDF_MODELS, ddf_entry, ddf = "Kenward-Roger")
cat("satterthwaite:", length(satt), " kenward-roger:", length(kr), "\n")

out <- list(
  generated_by = generated_by(list(lmerTest = as.character(packageVersion("lmerTest")),
                                   pbkrtest = as.character(packageVersion("pbkrtest")))),
  anova = anovas,
  confint = cis,
  satterthwaite = satt,
  kenward_roger = kr
)
write_json_file(out, file.path(OUT_DIR, "inference_reference.json"))
