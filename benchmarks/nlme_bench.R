## Times nlme's lme()/gls() fits for benchmarks/nlme_bench.py; prints one JSON object.
## Usage: Rscript benchmarks/nlme_bench.R <data dir> <repeats>
suppressPackageStartupMessages({ library(nlme); library(jsonlite) })
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; reps <- as.integer(args[2])
grun <- read.csv(file.path(dir, "grunfeld.csv")); grun$firm <- factor(grun$firm)
prod <- read.csv(file.path(dir, "produc.csv")); prod$state <- factor(prod$state); prod$region <- factor(prod$region)
ovary <- read.csv(file.path(dir, "ovary.csv")); ovary$Mare <- factor(ovary$Mare)
ovary$obs <- ave(seq_along(ovary$Mare), ovary$Mare, FUN = seq_along)
fits <- list(
  grunfeld_lme_ar1 = function(m) lme(inv ~ value + capital, random = ~ 1 | firm,
                                     correlation = corAR1(form = ~ year | firm), data = grun, method = m),
  grunfeld_gls_ar1 = function(m) gls(inv ~ value + capital, correlation = corAR1(form = ~ year | firm),
                                     data = grun, method = m),
  produc_lme_varident = function(m) lme(log(gsp) ~ log(pc) + unemp, random = ~ 1 | region/state,
                                        weights = varIdent(form = ~ 1 | region), data = prod, method = m),
  produc_lme_ar1 = function(m) lme(log(gsp) ~ log(pc) + unemp, random = ~ 1 | region/state,
                                   correlation = corAR1(form = ~ year | region/state), data = prod, method = m),
  ovary_lme_arma11 = function(m) lme(follicles ~ sin(2*pi*Time) + cos(2*pi*Time), random = ~ 1 | Mare,
                                     correlation = corARMA(form = ~ obs | Mare, p = 1, q = 1), data = ovary, method = m)
)
out <- list()
for (name in names(fits)) for (m in c("REML", "ML")) {
  f <- fits[[name]]
  fit <- f(m)
  t <- system.time(for (i in seq_len(reps)) f(m))[["elapsed"]] / reps
  out[[paste(name, m, sep = "_")]] <- list(time = t, loglik = as.numeric(logLik(fit)))
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
