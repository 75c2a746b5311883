#!/usr/bin/env Rscript
## Fit every benchmark model with lme4 in ONE R process and print the results
## as JSON on stdout (progress goes to stderr).
##
##   Rscript benchmarks/lme4_bench.R SPEC.json
##
## SPEC.json is written by run_benchmarks.py:
##   {"max_repeats": 5,
##    "models": [{"id": "1", "formula": "math5 ~ 1 + (1 | school)",
##                "methods": ["ML", "REML"],
##                "data": {"kind": "csv", "path": "data/jsp.csv", "factors": ["school"]}},
##               {"id": "10", ..., "data": {"kind": "InstEval"}}, ...]}
##
## Timing is inside R: data are read and converted to factors first (not
## timed); then per model and method one warm-up fit, then `repeats` fits each
## timed with system.time()["elapsed"], and the median is reported.  The number
## of repeats follows the warm-up time, with the same rule as the Python side:
## < 0.1 s: 4 * max_repeats, < 2 s: max_repeats, < 15 s: min(3, max_repeats),
## otherwise 1.
## Also timed: one evaluation of lme4's deviance function (devFunOnly = TRUE)
## at the fitted theta.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1) stop("usage: Rscript benchmarks/lme4_bench.R SPEC.json")
spec <- fromJSON(args[1], simplifyVector = FALSE)
max_repeats <- as.integer(spec$max_repeats)

n_repeats <- function(t) {
  if (t < 0.1) 4L * max_repeats else if (t < 2) max_repeats else if (t < 15) min(max_repeats, 3L) else 1L
}

load_model_data <- function(d) {
  if (d$kind == "InstEval") {
    x <- lme4::InstEval
    ## lme4 stores studage and lectage as ordered factors (polynomial
    ## contrasts); unorder them so that X has the treatment contrasts lmelib
    ## and statsmodels use (the ML log-likelihood does not depend on this).
    for (f in c("studage", "lectage")) x[[f]] <- factor(x[[f]], ordered = FALSE)
    return(x)
  }
  x <- read.csv(d$path)
  for (f in unlist(d$factors)) x[[f]] <- factor(x[[f]])
  x
}

## Fit, collecting warnings and messages (muffled) with the value.
fit_quiet <- function(form, data, reml) {
  warns <- character(0)
  value <- withCallingHandlers(
    lmer(form, data = data, REML = reml),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { warns <<- c(warns, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") }
  )
  list(model = value, warnings = unique(warns))
}

## Seconds per call of lme4's deviance function at theta.  system.time() has
## 1 ms resolution, so fast functions are timed over a loop of calls (mean);
## slower ones call by call (median).  gcFirst = FALSE: no full garbage
## collection before each of these many short timings.
time_devfun <- function(form, data, reml, theta) {
  devf <- suppressMessages(suppressWarnings(lmer(form, data = data, REML = reml, devFunOnly = TRUE)))
  t1 <- system.time(devf(theta), gcFirst = FALSE)[["elapsed"]]
  if (t1 < 0.02) {
    reps <- 200L
    tot <- system.time(for (i in seq_len(reps)) devf(theta), gcFirst = FALSE)[["elapsed"]]
    return(tot / reps)
  }
  k <- max(3L, min(20L, as.integer(ceiling(1 / t1))))
  median(vapply(seq_len(k), function(i) system.time(devf(theta), gcFirst = FALSE)[["elapsed"]], 0))
}

results <- list()
for (m in spec$models) {
  data <- tryCatch(load_model_data(m$data), error = function(e) e)
  form <- as.formula(m$formula)
  for (method in unlist(m$methods)) {
    reml <- method == "REML"
    key <- paste(m$id, method, sep = "/")
    message(sprintf("%s [lme4] %s %s ...", format(Sys.time(), "%H:%M:%S"), m$id, method))
    res <- tryCatch({
      if (inherits(data, "error")) stop(conditionMessage(data))
      t_warm <- system.time(w <- fit_quiet(form, data, reml))[["elapsed"]]
      reps <- n_repeats(t_warm)
      times <- numeric(reps)
      cpu <- numeric(reps)
      ## system.time runs gc() before each fit (gcFirst = TRUE), outside the timing
      for (i in seq_len(reps)) {
        st <- system.time(suppressWarnings(suppressMessages(lmer(form, data = data, REML = reml))))
        times[i] <- st[["elapsed"]]
        cpu[i] <- st[["user.self"]] + st[["sys.self"]]
      }
      fit <- w$model
      theta <- getME(fit, "theta")
      list(
        id = m$id, method = method, status = "ok",
        warmup_seconds = t_warm, times = I(times), seconds = median(times),
        cpu_seconds = median(cpu),
        loglik = as.numeric(logLik(fit)),
        objective = unname(fit@devcomp$cmp[if (reml) "REML" else "dev"]),
        feval = fit@optinfo$feval,
        theta = I(unname(theta)),
        fixef = I(unname(fixef(fit))),
        warnings = I(w$warnings),
        eval_seconds = time_devfun(form, data, reml, theta)
      )
    }, error = function(e) list(id = m$id, method = method, status = "error",
                                message = conditionMessage(e)))
    message(sprintf("%s [lme4] %s %s: %s", format(Sys.time(), "%H:%M:%S"), m$id, method,
                    if (res$status == "ok") sprintf("%.3f s", res$seconds) else res$message))
    results[[key]] <- res
  }
  rm(data)
  invisible(gc())
}

out <- list(
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  blas = tryCatch(extSoftVersion()[["BLAS"]], error = function(e) ""),
  results = unname(results)
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null"), "\n")
