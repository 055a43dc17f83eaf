# Consul agent configuration (e.g. /etc/consul.d/stretcher.hcl): every agent deploys on a "deploy" event.
#   consul event -name deploy s3://example-bucket/app/manifest.yml
watches = [
  {
    type         = "event"
    name         = "deploy"
    handler_type = "script"
    args         = ["/usr/local/bin/stretcher", "--retry", "3", "--timeout", "10m", "--random-delay", "5s"]
  }
]
