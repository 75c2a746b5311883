#!/usr/bin/env Rscript
## GLMM benchmarks in R for bench_glmm.py: lme4's glmer (default glmerControl)
## and, where requested, glmmTMB, on the models of a JSON spec written by
## bench_glmm.py (one CSV per data set, derived columns already made).
## Usage: Rscript benchmarks/glmer_bench.R spec.json   (prints JSON on stdout)

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
spec <- fromJSON(args[1], simplifyVector = FALSE)
has_tmb <- suppressWarnings(requireNamespace("glmmTMB", quietly = TRUE))

n_repeats <- function(warm, max_repeats) {
  if (warm < 0.1) 4 * max_repeats else if (warm < 2) max_repeats else if (warm < 15) min(max_repeats, 3) else 1
}

## R heap in use (Mb, Ncells + Vcells) and its maximum since the last gc(reset = TRUE)
heap_used <- function() sum(gc()[, 2])
heap_max <- function() sum(gc()[, 6])

## warm-up (peak memory measured on it), then timed repeats; returns a list
time_fit <- function(fit_fun, max_repeats) {
  base <- heap_used()
  invisible(gc(reset = TRUE))
  t0 <- proc.time()[["elapsed"]]
  fit <- fit_fun()
  warm <- proc.time()[["elapsed"]] - t0
  peak <- heap_max() - base
  times <- cpu <- numeric(0)
  reps <- if (max_repeats == 0) 0 else n_repeats(warm, max_repeats)
  for (i in seq_len(reps)) {
    st <- system.time(fit_fun())
    times <- c(times, st[["elapsed"]])
    cpu <- c(cpu, st[["user.self"]] + st[["sys.self"]])
  }
  if (reps == 0) { times <- warm; cpu <- NA }  # no repeats: the warm-up fit
  list(fit = fit, seconds = median(times), cpu_seconds = median(cpu), times = times, peak_mib = peak)
}

read_model_data <- function(m) {
  d <- read.csv(m$csv)
  for (f in unlist(m$factors)) d[[f]] <- factor(d[[f]])
  d
}

results <- list()
for (m in spec$models) {
  d <- read_model_data(m)
  fam <- get(m$family)(link = m$link)
  form <- as.formula(m$formula)
  w <- if (is.null(m$weights)) NULL else d[[m$weights]]
  d$.w <- if (is.null(w)) rep(1, nrow(d)) else w
  out <- tryCatch({
    r <- time_fit(function() suppressWarnings(suppressMessages(
      glmer(form, data = d, family = fam, nAGQ = m$nAGQ, weights = .w))), spec$max_repeats)
    f <- r$fit
    ll <- as.numeric(logLik(f))
    ## lme4 1.1-31 leaves the saturated model's constant out of logLik for nAGQ > 1
    ## (lme4 issues #161, #567): add it back so the value compares with a Laplace fit
    sat <- f@resp$family$aic(f@resp$y, f@resp$n, f@resp$y, f@resp$weights, 0)
    list(id = m$id, package = "lme4", status = "ok", seconds = r$seconds, cpu_seconds = r$cpu_seconds,
         times = r$times, loglik_reported = ll, loglik = if (m$nAGQ > 1) ll - sat / 2 else ll,
         feval = f@optinfo$feval, peak_mib = r$peak_mib,
         warnings = unlist(f@optinfo$conv$lme4$messages))
  }, error = function(e) list(id = m$id, package = "lme4", status = "error", message = conditionMessage(e)))
  results[[length(results) + 1]] <- out
  if (isTRUE(m$glmmTMB) && has_tmb) {
    out <- tryCatch({
      r <- time_fit(function() suppressWarnings(suppressMessages(
        glmmTMB::glmmTMB(form, data = d, family = fam, weights = .w))), spec$max_repeats)
      f <- r$fit
      list(id = m$id, package = "glmmTMB", status = "ok", seconds = r$seconds, cpu_seconds = r$cpu_seconds,
           times = r$times, loglik = as.numeric(logLik(f)), feval = unname(f$fit$evaluations[["function"]]),
           peak_mib = r$peak_mib, pdHess = isTRUE(f$sdr$pdHess))
    }, error = function(e) list(id = m$id, package = "glmmTMB", status = "error", message = conditionMessage(e)))
    results[[length(results) + 1]] <- out
  }
  rm(d)
  invisible(gc())
}
cat(toJSON(list(results = results, lme4 = as.character(packageVersion("lme4")),
                glmmTMB = if (has_tmb) as.character(packageVersion("glmmTMB")) else NULL),
           auto_unbox = TRUE, digits = NA, null = "null"))
