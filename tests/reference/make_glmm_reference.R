#!/usr/bin/env Rscript
## Generate tests/reference/glmm_reference.json: lme4 glmer() fits (binomial
## and Poisson) by Laplace (nAGQ = 1) and adaptive Gauss-Hermite quadrature
## (nAGQ = 9, 25; only for a single scalar random effect, where lme4 allows it).
## Run from the repository root:  Rscript tests/reference/make_glmm_reference.R

source(file.path("tests", "reference", "common.R"))

## Factor columns of the data files that only this script (and
## make_nlme_reference.R) uses; common.R's FACTORS is extended, not edited.
FACTORS[["grouseticks.csv"]]   <- c("INDEX", "BROOD", "YEAR", "LOCATION")
FACTORS[["contraception.csv"]] <- c("woman", "district", "use", "livch", "urban")
FACTORS[["epil.csv"]]          <- c("trt", "subject")

## Columns derived from a data file before fitting. Each entry gives the new
## column, the R expression (evaluated in the data frame after factor
## conversion) and a plain description for the Python side.
DERIVED <- list(
  contraception_use01 = list(
    column = "use01", r = "as.integer(use == \"Y\")",
    description = "1 if use is 'Y' (uses contraception), else 0"),
  jsp_pass5 = list(
    column = "pass5", r = "as.integer(math5 >= 30)",
    description = "1 if math5 >= 30, else 0 (30 is 2 points below the median of 32; 592 of 887 pupils pass)"),
  jsp_math3c = list(
    column = "math3c", r = "math3 - mean(math3)",
    description = "math3 minus its mean over the 887 pupils of jsp.csv")
)

## name, data, formula, family, link, nAGQ (vector: one entry per fit),
## weights (column name or NULL), derived (names in DERIVED).
MODELS <- list(
  list(name = "cbpp_binom", data = "cbpp.csv",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "logit", nAGQ = c(1, 9, 25)),
  list(name = "cbpp_binom_prop", data = "cbpp.csv",
       formula = "incidence/size ~ period + (1 | herd)", weights = "size",
       family = "binomial", link = "logit", nAGQ = c(1, 9, 25)),
  list(name = "cbpp_probit", data = "cbpp.csv",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       family = "binomial", link = "probit", nAGQ = 1),
  list(name = "contraception_ri", data = "contraception.csv",
       formula = "use01 ~ age + I(age^2) + urban + livch + (1 | district)",
       family = "binomial", link = "logit", nAGQ = c(1, 9),
       derived = "contraception_use01"),
  list(name = "contraception_urban_rs", data = "contraception.csv",
       formula = "use01 ~ age + I(age^2) + urban + livch + (urban | district)",
       family = "binomial", link = "logit", nAGQ = 1,
       derived = "contraception_use01"),
  list(name = "jsp_pass5_ri", data = "jsp.csv",
       formula = "pass5 ~ math3c + (1 | school)",
       family = "binomial", link = "logit", nAGQ = c(1, 9),
       derived = c("jsp_pass5", "jsp_math3c")),
  list(name = "grouseticks_olre", data = "grouseticks.csv",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
       family = "poisson", link = "log", nAGQ = 1),
  list(name = "grouseticks_no_olre", data = "grouseticks.csv",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
       family = "poisson", link = "log", nAGQ = 1),
  list(name = "epil_ri", data = "epil.csv",
       formula = "y ~ trt + log(base/4) + log(age) + V4 + (1 | subject)",
       family = "poisson", link = "log", nAGQ = c(1, 9)),
  list(name = "cbpp_pois_offset", data = "cbpp.csv",
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)",
       family = "poisson", link = "log", nAGQ = 1)
)

CHECK_OPTIMIZERS <- c("bobyqa", "Nelder_Mead")

model_data <- function(spec) {
  d <- load_data(spec$data)
  for (dn in spec$derived) {
    dv <- DERIVED[[dn]]
    d[[dv$column]] <- eval(parse(text = dv$r), d)
  }
  d
}

make_family <- function(spec) get(spec$family)(link = spec$link)

## optimizer NULL: glmer's default (bobyqa for the theta-only stage, then
## Nelder_Mead for theta and beta).
fit_glmer <- function(spec, nAGQ, optimizer = NULL) {
  d <- model_data(spec)
  args <- list(formula = as.formula(spec$formula), data = d,
               family = make_family(spec), nAGQ = nAGQ)
  if (!is.null(spec$weights)) args$weights <- as.name(spec$weights)
  if (!is.null(optimizer)) args$control <- glmerControl(optimizer = optimizer)
  with_conditions(do.call(glmer, args))
}

objective <- function(m) -2 * as.numeric(logLik(m))

optimizer_check <- function(spec, nAGQ) {
  lapply(CHECK_OPTIMIZERS, function(opt) {
    f <- fit_glmer(spec, nAGQ, optimizer = opt)
    m <- f$value
    list(optimizer = opt, objective = objective(m),
         theta = arr(getME(m, "theta")), fixef = arr(fixef(m)),
         singular = isSingular(m), feval = m@optinfo$feval,
         warnings = f$warnings, messages = f$messages)
  })
}



model_json <- function(spec, nAGQ, fit) {
  m <- fit$value
  ng <- ngrps(m)
  ngl <- as.list(as.numeric(ng)); names(ngl) <- names(ng)
  conv <- m@optinfo$conv$lme4$messages
  cmp <- m@devcomp$cmp
  cmpl <- as.list(unname(cmp)); names(cmpl) <- names(cmp)
  ## vcov() uses the finite-difference Hessian of the final (theta, beta)
  ## optimisation; use.hessian = FALSE gives the RX-based matrix (and warns
  ## when the two differ by more than 1e-4).
  vc <- with_conditions(as.matrix(vcov(m)))
  vc_rx <- with_conditions(as.matrix(vcov(m, use.hessian = FALSE)))
  V <- vc$value
  V_rx <- vc_rx$value
  ## -2 log-likelihood of the saturated model (mu = y), from the family's
  ## aic(): lme4 1.1.31 reports logLik relative to it for nAGQ > 1 fits
  ## (lme4 issues #161, #567), but in absolute terms for nAGQ = 1.
  r <- m@resp
  sat <- r$family$aic(r$y, r$n, r$y, r$weights, 0)
  out <- list(
    name = paste0(spec$name, "_agq", nAGQ),
    base = spec$name,
    data = spec$data,
    formula = spec$formula,
    family = spec$family,
    link = spec$link,
    nAGQ = nAGQ,
    weights = spec$weights,
    derived = unname(lapply(spec$derived, function(dn) DERIVED[[dn]])),
    control = NULL,
    factors = factor_cols(spec$data),
    objective = objective(m),
    deviance = deviance(m),
    minus2loglik = -2 * as.numeric(logLik(m)),
    minus2loglik_saturated = sat,
    minus2loglik_comparable = -2 * as.numeric(logLik(m)) + if (nAGQ > 1) sat else 0,
    devcomp_cmp = cmpl,
    loglik = as.numeric(logLik(m)),
    df = attr(logLik(m), "df"),
    aic = AIC(m),
    bic = BIC(m),
    nobs = nobs(m),
    df_residual = df.residual(m),
    theta = arr(getME(m, "theta")),
    theta_names = arr(names(getME(m, "theta"))),
    lower = arr(getME(m, "lower")),
    fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
    se = arr(sqrt(diag(V))),
    vcov = mat_rows(V),
    se_rx = arr(sqrt(diag(V_rx))),
    vcov_rx = mat_rows(V_rx),
    vcov_warnings = I(c(vc$warnings, vc_rx$warnings)),
    varcorr = varcorr_json(m),
    ranef = ranef_json(m),
    ngrps = ngl,
    singular = isSingular(m),
    fitted_head = arr(head(fitted(m), 10)),
    predict_link_head = arr(head(predict(m, type = "link"), 10)),
    resid_deviance_head = arr(head(residuals(m, type = "deviance"), 10)),
    resid_pearson_head = arr(head(residuals(m, type = "pearson"), 10)),
    optinfo = list(feval = m@optinfo$feval,
                   optimizer = arr(m@optinfo$optimizer),
                   conv_opt = m@optinfo$conv$opt,
                   lme4_messages = arr(if (is.null(conv)) character(0) else conv)),
    warnings = fit$warnings,
    messages = fit$messages
  )
  if (spec$family == "poisson") {
    pearson <- sum(residuals(m, type = "pearson")^2)
    out$pearson_chisq <- pearson
    out$overdispersion_ratio <- pearson / df.residual(m)
  }
  out
}

t0 <- Sys.time()
models_out <- list()
for (spec in MODELS) {
  for (q in spec$nAGQ) {
    fit <- fit_glmer(spec, q)
    mj <- model_json(spec, q, fit)
    oc <- optimizer_check(spec, q)
    mj$optimizer_check <- oc
    mj$best_objective <- min(mj$objective, vapply(oc, function(x) x$objective, 0))
    mj$default_at_optimum <- mj$objective - mj$best_objective < 1e-4
    cat(sprintf("%-32s -2logLik=%.6f comparable=%.6f deviance()=%.6f best=%.6f singular=%s warnings=%d messages=%d\n",
                mj$name, mj$objective, mj$minus2loglik_comparable, mj$deviance, mj$best_objective,
                mj$singular, length(fit$warnings), length(fit$messages)))
    models_out[[length(models_out) + 1]] <- mj
  }
}

## The weights form of cbpp must give the same fit as the cbind() form.
for (q in c(1, 9, 25)) {
  a <- Filter(function(x) x$name == paste0("cbpp_binom_agq", q), models_out)[[1]]
  b <- Filter(function(x) x$name == paste0("cbpp_binom_prop_agq", q), models_out)[[1]]
  stopifnot(abs(a$objective - b$objective) < 1e-8,
            abs(a$minus2loglik_saturated - b$minus2loglik_saturated) < 1e-8,
            max(abs(unlist(a$fixef$values) - unlist(b$fixef$values))) < 1e-6)
}

cat(sprintf("total %.1f s\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))
out <- list(generated_by = generated_by(), models = models_out)
write_json_file(out, file.path(OUT_DIR, "glmm_reference.json"))
