# Terraform and provider versions for the reference stack.
#
# aws >= 5.26: aws_lambda_function.logging_config (the function's log group named explicitly).
# archive >= 2.4: data.archive_file with source_dir, excludes and output_file_mode.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.26.0, < 6.0.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4.0, < 3.0.0"
    }
  }
}
