## Shared helpers for the lme4 reference generators.
## Sourced by make_reference.R and make_inference_reference.R; run those
## scripts from the repository root (paths below are relative to it).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

## Overridable for testing the scripts themselves; defaults are the real paths.
DATA_DIR <- Sys.getenv("LMELIB_REF_DATA_DIR", "data")
OUT_DIR <- Sys.getenv("LMELIB_REF_OUT_DIR", file.path("tests", "reference"))

## Grouping/categorical columns converted with factor() for each data set.
FACTORS <- list(
  "jsp.csv"        = c("school", "class", "gender", "social", "id"),
  "produc.csv"     = c("state", "region"),
  "grunfeld.csv"   = c("firm", "year"),
  "sleepstudy.csv" = c("Subject"),
  "dyestuff.csv"   = c("Batch"),
  "dyestuff2.csv"  = c("Batch"),
  "penicillin.csv" = c("plate", "sample"),
  "pastes.csv"     = c("batch", "cask", "sample"),
  "orthodont.csv"  = c("Subject", "Sex"),
  "cbpp.csv"       = c("herd", "period")
)

.data_cache <- new.env()

## Read data/<file> with read.csv and convert the listed columns to factors.
load_data <- function(file) {
  if (!is.null(.data_cache[[file]])) return(.data_cache[[file]])
  d <- read.csv(file.path(DATA_DIR, file))
  for (f in FACTORS[[file]]) {
    if (!f %in% names(d)) stop(sprintf("column %s missing in %s", f, file))
    d[[f]] <- factor(d[[f]])
  }
  .data_cache[[file]] <- d
  d
}

## Factor columns actually converted for a data file (array in JSON).
factor_cols <- function(file) I(FACTORS[[file]])

## Evaluate expr, collecting warnings and messages (muffled) alongside the value.
with_conditions <- function(expr) {
  warns <- character(0)
  msgs <- character(0)
  value <- withCallingHandlers(
    expr,
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, sub("\n$", "", conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  )
  list(value = value, warnings = I(warns), messages = I(msgs))
}

## Keep vectors as JSON arrays even when of length 1 (auto_unbox is on).
arr <- function(x) I(unname(x))

## Matrix -> list of row arrays.
mat_rows <- function(M) {
  M <- as.matrix(M)
  lapply(seq_len(nrow(M)), function(i) arr(as.numeric(M[i, ])))
}

## A table (anova, coefficient matrix, confint) -> {row_names, columns, values}
## where columns is an object colname -> array of values (NA -> null).
table_json <- function(tab) {
  tab <- as.data.frame(tab, check.names = FALSE)
  cols <- lapply(names(tab), function(cn) {
    v <- tab[[cn]]
    if (is.factor(v)) v <- as.character(v)
    arr(v)
  })
  names(cols) <- names(tab)
  list(row_names = arr(rownames(tab)), column_names = arr(names(tab)),
       columns = cols)
}

write_json_file <- function(x, path) {
  txt <- toJSON(x, auto_unbox = TRUE, digits = NA, na = "null",
                null = "null", pretty = TRUE)
  writeLines(txt, path)
  cat("wrote", path, "\n")
}

generated_by <- function(extra = list()) {
  c(list(R = R.version.string,
         lme4 = as.character(packageVersion("lme4")),
         Matrix = as.character(packageVersion("Matrix")),
         jsonlite = as.character(packageVersion("jsonlite")),
         date = format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z")),
    extra)
}

## Conditional modes with conditional sds, and as.data.frame(VarCorr(m)), as JSON
## (shared by make_reference.R and make_glmm_reference.R).
ranef_json <- function(m) {
  re <- ranef(m, condVar = TRUE)
  out <- lapply(names(re), function(g) {
    df <- re[[g]]
    pv <- attr(df, "postVar")
    n <- nrow(df)
    ## postVar is one q x q x n array, or (several terms on the same factor,
    ## e.g. ||) a list of such arrays whose columns concatenate in order.
    if (!is.list(pv)) pv <- list(pv)
    condsd <- lapply(seq_len(n), function(i) {
      arr(sqrt(unlist(lapply(pv, function(a) diag(matrix(a[, , i], dim(a)[1], dim(a)[2]))))))
    })
    list(levels = arr(rownames(df)),
         columns = arr(colnames(df)),
         values = mat_rows(as.matrix(df)),
         condsd = condsd)
  })
  names(out) <- names(re)
  out
}

varcorr_json <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) {
    list(grp = vc$grp[i],
         var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
         var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
         vcov = vc$vcov[i],
         sdcor = vc$sdcor[i])
  })
}
