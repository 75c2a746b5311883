#!/usr/bin/env Rscript
## Generate tests/reference/nlme_reference.json: nlme gls() and lme() fits,
## by ML and REML, with residual correlation structures (corAR1, corARMA,
## corCAR1, corCompSymm) and variance functions (varIdent, varPower, varExp).
## Run from the repository root:  Rscript tests/reference/make_nlme_reference.R

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(nlme))

## Factor columns for this script. common.R's FACTORS is extended, not edited.
## grunfeld's `year` must stay numeric here: corAR1(form = ~ year | firm)
## needs an integer time covariate, so only `firm` is a factor.
FACTORS[["grunfeld.csv"]]   <- c("firm")
FACTORS[["ovary.csv"]]      <- c("Mare")
FACTORS[["bodyweight.csv"]] <- c("Rat", "Diet")

## fun: "gls" or "lme"; fixed: model formula; random, correlation, weights:
## R expressions as text (NULL = absent), evaluated as given.
## acf_form: grouping for ACF() of gls fits that have no correlation structure
## (their residuals are otherwise treated as one series).
OV_FIXED <- "follicles ~ sin(2*pi*Time) + cos(2*pi*Time)"
BW_FIXED <- "weight ~ Time * Diet"
MODELS <- list(
  ## grunfeld: 10 firms x 20 years
  list(name = "grunfeld_gls", fun = "gls", data = "grunfeld.csv",
       fixed = "inv ~ value + capital", acf_form = "~ 1 | firm"),
  list(name = "grunfeld_gls_ar1", fun = "gls", data = "grunfeld.csv",
       fixed = "inv ~ value + capital",
       correlation = "corAR1(form = ~ year | firm)"),
  list(name = "grunfeld_lme_ri", fun = "lme", data = "grunfeld.csv",
       fixed = "inv ~ value + capital", random = "~ 1 | firm"),
  list(name = "grunfeld_lme_ri_ar1", fun = "lme", data = "grunfeld.csv",
       fixed = "inv ~ value + capital", random = "~ 1 | firm",
       correlation = "corAR1(form = ~ year | firm)"),
  list(name = "grunfeld_lme_ri_varident", fun = "lme", data = "grunfeld.csv",
       fixed = "inv ~ value + capital", random = "~ 1 | firm",
       weights = "varIdent(form = ~ 1 | firm)"),
  ## produc: 48 states in 9 regions x 17 years
  list(name = "produc_lme_nested", fun = "lme", data = "produc.csv",
       fixed = "log(gsp) ~ log(pc) + unemp", random = "~ 1 | region/state"),
  list(name = "produc_lme_nested_ar1", fun = "lme", data = "produc.csv",
       fixed = "log(gsp) ~ log(pc) + unemp", random = "~ 1 | region/state",
       correlation = "corAR1(form = ~ year | region/state)"),
  list(name = "produc_lme_nested_varident", fun = "lme", data = "produc.csv",
       fixed = "log(gsp) ~ log(pc) + unemp", random = "~ 1 | region/state",
       weights = "varIdent(form = ~ 1 | region)"),
  list(name = "produc_gls_varident", fun = "gls", data = "produc.csv",
       fixed = "log(gsp) ~ log(pc) + unemp",
       weights = "varIdent(form = ~ 1 | region)", acf_form = "~ 1 | state"),
  ## Ovary: 11 mares, daily follicle counts
  list(name = "ovary_gls_ar1", fun = "gls", data = "ovary.csv", fixed = OV_FIXED,
       correlation = "corAR1(form = ~ 1 | Mare)"),
  list(name = "ovary_lme_ri", fun = "lme", data = "ovary.csv", fixed = OV_FIXED,
       random = "~ 1 | Mare"),
  list(name = "ovary_lme_ri_ar1", fun = "lme", data = "ovary.csv", fixed = OV_FIXED,
       random = "~ 1 | Mare", correlation = "corAR1()"),
  list(name = "ovary_lme_ri_arma11", fun = "lme", data = "ovary.csv", fixed = OV_FIXED,
       random = "~ 1 | Mare", correlation = "corARMA(p = 1, q = 1)"),
  list(name = "ovary_lme_ri_car1", fun = "lme", data = "ovary.csv", fixed = OV_FIXED,
       random = "~ 1 | Mare", correlation = "corCAR1(form = ~ Time | Mare)"),
  ## BodyWeight: 16 rats x 11 days, 3 diets
  list(name = "bodyweight_lme_rs", fun = "lme", data = "bodyweight.csv",
       fixed = BW_FIXED, random = "~ Time | Rat"),
  list(name = "bodyweight_lme_rs_varpower", fun = "lme", data = "bodyweight.csv",
       fixed = BW_FIXED, random = "~ Time | Rat", weights = "varPower()"),
  list(name = "bodyweight_lme_rs_varpower_car1", fun = "lme", data = "bodyweight.csv",
       fixed = BW_FIXED, random = "~ Time | Rat", weights = "varPower()",
       correlation = "corCAR1(form = ~ Time | Rat)"),
  list(name = "bodyweight_lme_rs_varexp", fun = "lme", data = "bodyweight.csv",
       fixed = BW_FIXED, random = "~ Time | Rat", weights = "varExp(form = ~ Time)"),
  ## Orthodont: 27 children x 4 ages
  list(name = "orthodont_lme_ri", fun = "lme", data = "orthodont.csv",
       fixed = "distance ~ age + Sex", random = "~ 1 | Subject"),
  list(name = "orthodont_lme_ri_cs", fun = "lme", data = "orthodont.csv",
       fixed = "distance ~ age + Sex", random = "~ 1 | Subject",
       correlation = "corCompSymm(form = ~ 1 | Subject)"),
  list(name = "orthodont_gls_cs", fun = "gls", data = "orthodont.csv",
       fixed = "distance ~ age + Sex",
       correlation = "corCompSymm(form = ~ 1 | Subject)"),
  list(name = "orthodont_gls_cs_varident", fun = "gls", data = "orthodont.csv",
       fixed = "distance ~ age + Sex",
       correlation = "corCompSymm(form = ~ 1 | Subject)",
       weights = "varIdent(form = ~ 1 | Sex)")
)

ev <- function(txt) if (is.null(txt)) NULL else eval(parse(text = txt))

fit_nlme <- function(spec, method) {
  d <- load_data(spec$data)
  args <- list(as.formula(spec$fixed), data = d, method = method)
  if (!is.null(spec$random)) args$random <- as.formula(spec$random)
  if (!is.null(spec$correlation)) args$correlation <- ev(spec$correlation)
  if (!is.null(spec$weights)) args$weights <- ev(spec$weights)
  names(args)[1] <- if (spec$fun == "gls") "model" else "fixed"
  tryCatch(with_conditions(do.call(spec$fun, args)),
           error = function(e) list(value = NULL, error = conditionMessage(e),
                                    warnings = I(character(0)),
                                    messages = I(character(0))))
}

## Run expr, recording value or error and the warnings.
safely <- function(expr) {
  tryCatch({
    r <- with_conditions(expr)
    list(value = r$value, error = NULL, warnings = r$warnings)
  }, error = function(e) list(value = NULL, error = conditionMessage(e),
                              warnings = I(character(0))))
}

## {names, values}; unconstrained coefficients are unnamed in nlme, so they
## take the names of the natural-scale ones.
named_values <- function(x, nm = names(x)) {
  if (is.null(x) || length(x) == 0) return(NULL)
  if (is.null(nm)) nm <- rep("", length(x))
  list(names = arr(nm), values = arr(as.numeric(x)))
}

struct_json <- function(st) {
  if (is.null(st)) return(NULL)
  nat <- coef(st, unconstrained = FALSE)
  c(list(class = class(st)[1]), named_values(nat),
    list(unconstrained = named_values(coef(st, unconstrained = TRUE), names(nat))))
}

## Random-effects covariance matrices per grouping level, natural scale.
re_cov_json <- function(m) {
  rs <- m$modelStruct$reStruct
  s2 <- m$sigma^2
  out <- lapply(names(rs), function(g) {
    M <- as.matrix(rs[[g]]) * s2
    sds <- sqrt(diag(M))
    list(names = arr(colnames(M)), cov = mat_rows(M), sd = arr(sds),
         corr = mat_rows(M / outer(sds, sds)))
  })
  names(out) <- names(rs)
  out
}

## VarCorr(lme) is a character matrix; keep it as text plus numbers.
nlme_varcorr_json <- function(m) {
  vc <- VarCorr(m)
  cols <- colnames(vc)
  out <- list(row_names = arr(rownames(vc)), column_names = arr(cols))
  out$columns <- lapply(cols, function(cn) arr(unname(vc[, cn])))
  names(out$columns) <- cols
  num <- suppressWarnings(as.numeric(vc[, "StdDev"]))
  out$stddev <- arr(num)
  out
}

interval_json <- function(iv) {
  ## intervals.lme / intervals.gls: list of matrices (or lists of matrices for
  ## reStruct) with columns lower, est., upper; sigma is a named vector.
  conv <- function(x) {
    if (is.null(x)) return(NULL)
    if (is.list(x) && !is.data.frame(x)) {
      r <- lapply(x, conv); names(r) <- names(x); return(r)
    }
    if (is.null(dim(x))) {
      return(list(row_names = arr("sigma"), column_names = arr(names(x)),
                  columns = setNames(lapply(names(x), function(n) arr(x[[n]])), names(x))))
    }
    table_json(x)
  }
  r <- lapply(names(iv), function(n) conv(iv[[n]]))
  names(r) <- names(iv)
  r
}

model_json <- function(spec, method, fit) {
  base <- list(
    name = paste0(spec$name, "_", tolower(method)),
    base = spec$name,
    fun = spec$fun,
    data = spec$data,
    fixed = spec$fixed,
    random = spec$random,
    correlation = spec$correlation,
    weights = spec$weights,
    method = method,
    factors = factor_cols(spec$data),
    error = fit$error
  )
  m <- fit$value
  if (is.null(m)) return(c(base, list(warnings = fit$warnings, messages = fit$messages)))
  ll <- logLik(m)
  V <- as.matrix(vcov(m))
  fx <- if (spec$fun == "gls") coef(m) else fixef(m)
  cs <- m$modelStruct$corStruct
  vs <- m$modelStruct$varStruct
  iv <- safely(intervals(m, which = "all"))
  iv_which <- "all"
  if (is.null(iv$value)) {
    ## e.g. "Non-positive definite approximate variance-covariance": keep the
    ## error and fall back to the intervals of the fixed effects.
    iv_fixed <- safely(intervals(m, which = if (spec$fun == "gls") "coef" else "fixed"))
    if (!is.null(iv_fixed$value)) {
      iv$value <- iv_fixed$value
      iv_which <- if (spec$fun == "gls") "coef" else "fixed"
    }
  }
  acf <- if (spec$fun == "gls" && is.null(cs) && !is.null(spec$acf_form)) {
    safely(ACF(m, resType = "normalized", form = as.formula(spec$acf_form)))
  } else {
    safely(ACF(m, resType = "normalized"))
  }
  out <- c(base, list(
    loglik = as.numeric(ll),
    df = attr(ll, "df"),
    aic = AIC(m),
    bic = BIC(m),
    nobs = nobs(m),
    sigma = m$sigma,
    fixef = list(names = arr(names(fx)), values = arr(fx)),
    se = arr(sqrt(diag(V))),
    vcov = mat_rows(V),
    re_cov = if (spec$fun == "lme") re_cov_json(m) else NULL,
    varcorr = if (spec$fun == "lme") nlme_varcorr_json(m) else NULL,
    ngrps = if (spec$fun == "lme") as.list(m$dims$ngrps[seq_len(m$dims$Q)]) else NULL,
    cor_struct = struct_json(cs),
    var_struct = struct_json(vs),
    intervals = if (is.null(iv$value)) NULL else interval_json(iv$value),
    intervals_which = if (is.null(iv$value)) NULL else iv_which,
    intervals_error = iv$error,
    intervals_warnings = iv$warnings,
    resid_normalized_head = arr(head(as.numeric(residuals(m, type = "normalized")), 10)),
    resid_pearson_head = arr(head(as.numeric(residuals(m, type = "pearson")), 10)),
    resid_response_head = arr(head(as.numeric(residuals(m, type = "response")), 10)),
    fitted_head = arr(head(as.numeric(fitted(m)), 10)),
    acf = if (is.null(acf$value)) NULL else list(
      lag = arr(acf$value$lag), acf = arr(acf$value$ACF),
      n_used = arr(attr(acf$value, "n.used"))),
    acf_form = if (spec$fun == "gls" && is.null(cs)) spec$acf_form else NULL,
    acf_error = acf$error,
    warnings = fit$warnings,
    messages = fit$messages
  ))
  out
}

t0 <- Sys.time()
models_out <- list()
for (spec in MODELS) {
  for (method in c("REML", "ML")) {
    t1 <- Sys.time()
    fit <- fit_nlme(spec, method)
    mj <- model_json(spec, method, fit)
    cat(sprintf("%-40s %5.1fs logLik=%s warnings=%d error=%s intervals_error=%s\n",
                mj$name, as.numeric(difftime(Sys.time(), t1, units = "secs")),
                if (is.null(mj$loglik)) "NA" else sprintf("%.6f", mj$loglik),
                length(mj$warnings),
                if (is.null(mj$error)) "-" else mj$error,
                if (is.null(mj$intervals_error)) "-" else mj$intervals_error))
    models_out[[length(models_out) + 1]] <- mj
  }
}
cat(sprintf("total %.1f s\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))

gb <- generated_by(list(nlme = as.character(packageVersion("nlme"))))
out <- list(generated_by = gb, models = models_out)
write_json_file(out, file.path(OUT_DIR, "nlme_reference.json"))
