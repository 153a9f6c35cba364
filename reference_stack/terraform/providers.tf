# One region for everything: the ACM certificate of a REGIONAL custom domain must live in the
# API's own region (docs/aws-behaviour.md §6).
provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project = "loadcheck"
      stack   = var.name_prefix
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
