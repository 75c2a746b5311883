#!/usr/bin/env Rscript
## Generate tests/reference/ddf_reference.json: the R values that lmelib's
## profile/confint/ddf tests need beyond inference_reference.json:
##   * lmerTest Satterthwaite coefficient tables of ML fits;
##   * single contrasts (lmerTest::contest1D) that are not a unit vector, by
##     Satterthwaite and Kenward-Roger, and a 2-df Kenward-Roger F test
##     (pbkrtest::Lb_ddf);
##   * profile intervals at levels other than 0.95 (lme4), with the column
##     names R gives them (format.perc);
##   * boot's percentile interpolation (boot:::norm.inter) on fixed draws.
## Run from the repository root:  Rscript tests/reference/make_ddf_reference.R

source(file.path("tests", "reference", "common.R"))
suppressPackageStartupMessages({
  library(lmerTest)   # masks lme4::lmer
  library(pbkrtest)
  library(boot)
})

fit <- function(data, formula, reml) {
  d <- load_data(data)
  lmerTest::lmer(as.formula(formula), data = d, REML = reml)
}
model_info <- function(m, data, formula, reml) {
  list(data = data, formula = formula, reml = reml,
       theta = arr(unname(getME(m, "theta"))), sigma = sigma(m))
}

## ---- Satterthwaite t tests of ML fits -----------------------------------
ML_MODELS <- list(
  sleepstudy_rs_ml = list(data = "sleepstudy.csv", formula = "Reaction ~ Days + (Days | Subject)"),
  orthodont_rs_ml  = list(data = "orthodont.csv",  formula = "distance ~ age + Sex + (age | Subject)")
)
satt_ml <- lapply(names(ML_MODELS), function(nm) {
  s <- ML_MODELS[[nm]]
  m <- fit(s$data, s$formula, FALSE)
  c(list(name = nm), model_info(m, s$data, s$formula, FALSE),
    list(coefficients = table_json(summary(m, ddf = "Satterthwaite")$coefficients)))
})

## ---- contrasts ---------------------------------------------------------
CONTRASTS <- list(
  list(name = "sleepstudy_day7", data = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days | Subject)", L = c(1, 7)),
  list(name = "orthodont_age_plus_sex", data = "orthodont.csv",
       formula = "distance ~ age + Sex + (age | Subject)", L = c(0, 1, 1)),
  list(name = "penicillin_intercept_half", data = "penicillin.csv",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", L = 0.5)
)
contrasts <- lapply(CONTRASTS, function(s) {
  m <- fit(s$data, s$formula, TRUE)
  out <- c(list(name = s$name, L = arr(s$L)), model_info(m, s$data, s$formula, TRUE))
  for (ddf in c("Satterthwaite", "Kenward-Roger"))
    out[[ddf]] <- as.list(contest1D(m, s$L, ddf = ddf))
  out
})

m_or <- fit("orthodont.csv", "distance ~ age + Sex + (age | Subject)", TRUE)
L2 <- rbind(c(0, 1, 0), c(0, 0, 1))
kr_f <- c(list(name = "orthodont_age_and_sex", L = lapply(seq_len(nrow(L2)), function(i) arr(L2[i, ]))),
          model_info(m_or, "orthodont.csv", "distance ~ age + Sex + (age | Subject)", TRUE),
          list(ddf = pbkrtest::Lb_ddf(L2, vcov(m_or), pbkrtest::vcovAdj(m_or))))

## ---- profile intervals at other levels -----------------------------------
m_dy <- lme4::lmer(Yield ~ 1 + (1 | Batch), data = load_data("dyestuff.csv"), REML = FALSE)
pr_dy <- profile(m_dy)
levels_ci <- lapply(c(0.5, 0.8, 0.9, 0.99), function(lev)
  list(level = lev, confint = table_json(confint(pr_dy, level = lev))))
profile_levels <- c(list(name = "dyestuff_ri_ml"),
                    model_info(m_dy, "dyestuff.csv", "Yield ~ 1 + (1 | Batch)", FALSE),
                    list(intervals = levels_ci))

## ---- column names of intervals (format.perc) -----------------------------
format_perc <- lapply(c(0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999), function(lev) {
  a <- (1 - lev) / 2
  list(level = lev, names = arr(lme4:::format.perc(c(a, 1 - a), 3)))
})

## ---- boot's percentile interpolation -------------------------------------
draws <- list(
  list(t = 3 * qexp(ppoints(199)) + sin(1:199), alpha = c(0.025, 0.975)),
  list(t = 3 * qexp(ppoints(57)) + sin(1:57), alpha = c(0.05, 0.95)),
  list(t = cos(1:20) * 10, alpha = c(0.025, 0.1, 0.9, 0.975))
)
norm_inter <- lapply(draws, function(x) {
  r <- suppressWarnings(boot:::norm.inter(x$t, x$alpha))
  list(t = arr(x$t), alpha = arr(x$alpha), quantiles = arr(r[, 2]))
})

out <- list(
  generated_by = generated_by(list(lmerTest = as.character(packageVersion("lmerTest")),
                                   pbkrtest = as.character(packageVersion("pbkrtest")),
                                   boot = as.character(packageVersion("boot")))),
  satterthwaite_ml = satt_ml,
  contrasts = contrasts,
  kenward_roger_f = kr_f,
  profile_levels = profile_levels,
  format_perc = format_perc,
  norm_inter = norm_inter
)
write_json_file(out, file.path(OUT_DIR, "ddf_reference.json"))
