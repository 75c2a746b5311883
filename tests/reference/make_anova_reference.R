#!/usr/bin/env Rscript
## Generate tests/reference/anova_reference.json: likelihood-ratio tests with
## boundary-corrected (chi-bar-square) p-values, and a parametric-bootstrap
## reference distribution of the LRT from pbkrtest.
## Run from the repository root:  Rscript tests/reference/make_anova_reference.R  (~1 min)
##
## (1) `mixture`: for comparisons that add one random effect to a term of
##     dimension k - 1 (with all its covariances), lme4's anova() of the two ML
##     fits and the p-value of the 50:50 mixture 0.5 chi2(k - 1) + 0.5 chi2(k)
##     (Self & Liang 1987; Stram & Lee 1994), computed here with pchisq from
##     lme4's Chisq.  k is stated by hand for each comparison.  chi2(0) is a
##     point mass at 0, and a Chisq below 1e-6 counts as 0 (p = 1).
## (2) `bootstrap`: a comparison that changes fixed and random effects at once,
##     which no mixture covers.  pbkrtest::PBrefdist simulates from the smaller
##     ML fit, refits both models and returns the LRT of each simulation.
##     `p_bootstrap` is (1 + #{ref >= Chisq}) / (nsim + 1); pbkrtest's own p.PB
##     drops the non-positive draws and is stored as `p_pbkrtest`.
##
## All fits use lmerControl(optimizer = "bobyqa"), which reaches the optimum
## where lme4's default stops short (see README.md, jsp_math3_rs).

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages(library(pbkrtest))

CTRL <- lmerControl(optimizer = "bobyqa")
ZERO_LRT <- 1e-6

## id, data, smaller and larger formula (R syntax), kind of the smaller fit, k.
MIXTURE <- list(
  list(id = "jsp_lm_vs_ri", data = "jsp.csv", small = "math5 ~ math3", small_kind = "lm",
       large = "math5 ~ math3 + (1 | school)", k = 1),
  list(id = "dyestuff_lm_vs_ri", data = "dyestuff.csv", small = "Yield ~ 1", small_kind = "lm",
       large = "Yield ~ 1 + (1 | Batch)", k = 1),
  list(id = "jsp_ri_vs_uncorr", data = "jsp.csv", small = "math5 ~ math3 + (1 | school)",
       large = "math5 ~ math3 + (math3 || school)", k = 1),
  list(id = "jsp_ri_vs_rs", data = "jsp.csv", small = "math5 ~ math3 + (1 | school)",
       large = "math5 ~ math3 + (math3 | school)", k = 2),
  list(id = "orthodont_ri_vs_uncorr", data = "orthodont.csv", small = "distance ~ age + Sex + (1 | Subject)",
       large = "distance ~ age + Sex + (age || Subject)", k = 1),
  list(id = "orthodont_ri_vs_rs", data = "orthodont.csv", small = "distance ~ age + Sex + (1 | Subject)",
       large = "distance ~ age + Sex + (age | Subject)", k = 2),
  list(id = "sleepstudy_ri_vs_rs", data = "sleepstudy.csv", small = "Reaction ~ Days + (1 | Subject)",
       large = "Reaction ~ Days + (Days | Subject)", k = 2),
  list(id = "penicillin_plate_vs_crossed", data = "penicillin.csv", small = "diameter ~ 1 + (1 | plate)",
       large = "diameter ~ 1 + (1 | plate) + (1 | sample)", k = 1),
  list(id = "pastes_batch_vs_nested", data = "pastes.csv", small = "strength ~ 1 + (1 | batch)",
       large = "strength ~ 1 + (1 | batch/cask)", k = 1)
)

fit_ml <- function(formula, data, kind = "lmer") {
  d <- load_data(data)
  if (kind == "lm") return(with_conditions(lm(as.formula(formula), data = d)))
  with_conditions(lmer(as.formula(formula), data = d, REML = FALSE, control = CTRL))
}

chibar_p <- function(chisq, k) {
  if (chisq <= ZERO_LRT) return(1)
  lower <- if (k == 1) 0 else pchisq(chisq, k - 1, lower.tail = FALSE)
  0.5 * lower + 0.5 * pchisq(chisq, k, lower.tail = FALSE)
}

mixture_entry <- function(s) {
  kind <- if (is.null(s$small_kind)) "lmer" else s$small_kind
  f0 <- fit_ml(s$small, s$data, kind)
  f1 <- fit_ml(s$large, s$data)
  a <- anova(f1$value, f0$value)   # lme4's anova.merMod, lmer first; sorted by npar
  chisq <- a$Chisq[2]
  list(id = s$id, data = s$data, factors = factor_cols(s$data),
       small = s$small, small_kind = kind, large = s$large, k = s$k,
       loglik = arr(a$logLik), npar = arr(a$npar), Chisq = chisq, Df = a$Df[2],
       p_naive = a[["Pr(>Chisq)"]][2], p_boundary = chibar_p(chisq, s$k),
       warnings = I(c(f0$warnings, f1$warnings)), messages = I(c(f0$messages, f1$messages)))
}

mixture <- lapply(MIXTURE, mixture_entry)
cat("mixture comparisons:", length(mixture), "\n")

## ---- (2) parametric bootstrap ------------------------------------------------
BOOT <- list(id = "orthodont_quadratic", data = "orthodont.csv",
             small = "distance ~ age + (1 | Subject)",
             large = "distance ~ age + I(age^2) + (1 | Subject) + (0 + age | Subject)",
             large_py = "distance ~ age + I(age**2) + (1 | Subject) + (0 + age | Subject)",
             nsim = 2000L, seed = 20240611L)
b0 <- fit_ml(BOOT$small, BOOT$data)
b1 <- fit_ml(BOOT$large, BOOT$data)
a <- anova(b1$value, b0$value)
set.seed(BOOT$seed)
t0 <- Sys.time()
ref <- with_conditions(PBrefdist(b1$value, b0$value, nsim = BOOT$nsim, cl = 1))
cat(sprintf("PBrefdist: %d simulations in %.1fs\n", BOOT$nsim,
            as.numeric(difftime(Sys.time(), t0, units = "secs"))))
draws <- as.numeric(ref$value)
chisq <- a$Chisq[2]
bootstrap <- c(BOOT, list(
  factors = factor_cols(BOOT$data),
  loglik = arr(a$logLik), npar = arr(a$npar), Chisq = chisq, Df = a$Df[2],
  p_naive = a[["Pr(>Chisq)"]][2],
  p_bootstrap = (1 + sum(draws >= chisq - ZERO_LRT)) / (length(draws) + 1),
  p_pbkrtest = unname(attr(ref$value, "samples")["pPB"]),
  ref = arr(draws),
  fit_warnings = I(c(b0$warnings, b1$warnings)),
  sampling_warning_count = length(ref$warnings),
  sampling_warnings = arr(unique(ref$warnings))))

write_json_file(list(generated_by = generated_by(list(pbkrtest = as.character(packageVersion("pbkrtest")))),
                     mixture = mixture, bootstrap = bootstrap),
                file.path(OUT_DIR, "anova_reference.json"))
