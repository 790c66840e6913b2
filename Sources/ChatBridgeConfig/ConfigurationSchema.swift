/// The JSON Schemas of the configuration file and of rule files, for editors: with the
/// YAML language server (VS Code's YAML extension, Neovim, Helix...), a file whose first
/// line is `# yaml-language-server: $schema=PATH` gets completion, descriptions and
/// defaults, and every unknown key underlined.
///
/// The repository keeps the same text in `schema/` (a test checks that they are equal,
/// and that every key the parsers accept is in the schema, and nothing else);
/// `chatbridge init` writes them next to the files it creates, so that the schema always
/// matches the chatbridge that wrote it, offline.
package enum ConfigurationSchema {
    /// Where `chatbridge init DIR` writes ``configJSON``, relative to DIR.
    package static let configRelativePath = "schema/chatbridge.schema.json"
    /// Where `chatbridge init DIR` writes ``ruleJSON``, relative to DIR.
    package static let ruleRelativePath = "schema/rule.schema.json"

    /// The schema of `config/chatbridge.yaml` (JSON Schema 2020-12).
    package static let configJSON = #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "https://chatbridge.invalid/schema/chatbridge.schema.json",
          "title": "chatbridge configuration (config/chatbridge.yaml)",
          "description": "Sources to poll, the store, rules, sinks, delivery and the /metrics listener. ${NAME} takes a value from the environment.",
          "type": "object",
          "additionalProperties": false,
          "required": [
            "sources"
          ],
          "properties": {
            "sources": {
              "type": "array",
              "minItems": 1,
              "description": "The Unipile instances / account sets to poll; names unique.",
              "items": {
                "$ref": "#/$defs/source"
              }
            },
            "store": {
              "type": "string",
              "description": "The store: a SQLite file (relative to the folder above config/; created with its folder when missing), or a postgres:// URL that several instances share.",
              "default": "state/chatbridge.sqlite"
            },
            "rules": {
              "type": "string",
              "description": "A folder of *.yaml rule files, or one file.",
              "default": "rules/"
            },
            "baseline": {
              "description": "What the first complete poll of a source produces: silent (stored, no events) or emit (every chat a chat.added).",
              "anyOf": [
                {
                  "enum": [
                    "silent",
                    "emit"
                  ]
                },
                {
                  "$ref": "#/$defs/substitution"
                }
              ],
              "default": "silent"
            },
            "retention": {
              "description": "Events and finished deliveries older than this are pruned.",
              "anyOf": [
                {
                  "type": "string",
                  "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                },
                {
                  "$ref": "#/$defs/substitution"
                }
              ],
              "default": "30d"
            },
            "sinks": {
              "type": [
                "object",
                "null"
              ],
              "description": "Named destinations rules send to (`send: [NAME]`). `stdout` always exists.",
              "propertyNames": {
                "pattern": "^[A-Za-z0-9_.-]+$"
              },
              "properties": {
                "stdout": {
                  "anyOf": [
                    {
                      "type": "null"
                    },
                    {
                      "$ref": "#/$defs/stdoutSink"
                    }
                  ]
                }
              },
              "additionalProperties": {
                "$ref": "#/$defs/sink"
              }
            },
            "delivery": {
              "$ref": "#/$defs/delivery"
            },
            "http": {
              "$ref": "#/$defs/http"
            },
            "instance": {
              "type": "string",
              "maxLength": 100,
              "pattern": "^[^\\s]+$",
              "description": "This process's name in logs and status, with a shared PostgreSQL store (default HOST-PID)."
            },
            "lease": {
              "description": "How long a source stays with an instance that stopped renewing its lease (at least 1s).",
              "default": "30s",
              "anyOf": [
                {
                  "type": "string",
                  "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                },
                {
                  "$ref": "#/$defs/substitution"
                }
              ]
            }
          },
          "$defs": {
            "substitution": {
              "type": "string",
              "pattern": "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}",
              "description": "A value from the environment: ${NAME} or ${NAME:-default}."
            },
            "source": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "name",
                "url",
                "api_key"
              ],
              "description": "One Unipile instance / account set.",
              "properties": {
                "name": {
                  "type": "string",
                  "description": "Unique; appears in events as `source`.",
                  "pattern": "^[a-z0-9_-]+$"
                },
                "url": {
                  "type": "string",
                  "description": "Your Unipile DSN (http or https); /api/v1/chats is appended."
                },
                "api_key": {
                  "type": "string",
                  "description": "Sent as X-API-KEY; keep it in the environment: ${UNIPILE_API_KEY}."
                },
                "interval": {
                  "description": "Time between poll starts (up to 10% jitter is added).",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "30s"
                },
                "page_size": {
                  "description": "Chats per request (the API's `limit`).",
                  "anyOf": [
                    {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 250
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": 250
                },
                "account_type": {
                  "description": "Only this provider.",
                  "anyOf": [
                    {
                      "enum": [
                        "WHATSAPP",
                        "LINKEDIN",
                        "SLACK",
                        "TWITTER",
                        "MESSENGER",
                        "INSTAGRAM",
                        "TELEGRAM"
                      ]
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ]
                },
                "account_ids": {
                  "description": "Only these accounts.",
                  "anyOf": [
                    {
                      "type": "array",
                      "items": {
                        "type": "string"
                      }
                    },
                    {
                      "type": "string"
                    }
                  ]
                },
                "unread": {
                  "description": "true: unread chats only; false: read chats only.",
                  "anyOf": [
                    {
                      "type": "boolean"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ]
                },
                "timeout": {
                  "description": "Per request.",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "30s"
                },
                "max_requests_per_second": {
                  "description": "Requests per second across the source; 0 for no limit.",
                  "default": 5,
                  "anyOf": [
                    {
                      "type": "number",
                      "minimum": 0
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ]
                }
              }
            },
            "sink": {
              "description": "A sink: stdout, webhook, exec or http.",
              "oneOf": [
                {
                  "$ref": "#/$defs/stdoutSink"
                },
                {
                  "$ref": "#/$defs/webhookSink"
                },
                {
                  "$ref": "#/$defs/execSink"
                },
                {
                  "$ref": "#/$defs/httpSink"
                }
              ]
            },
            "stdoutSink": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "type"
              ],
              "description": "One compact JSON line per delivery on standard output.",
              "properties": {
                "type": {
                  "const": "stdout",
                  "description": "The sink's type."
                }
              }
            },
            "webhookSink": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "type",
                "url"
              ],
              "description": "An HTTP POST of the event (json) or a chat message (slack, discord, teams).",
              "properties": {
                "type": {
                  "const": "webhook",
                  "description": "The sink's type."
                },
                "url": {
                  "type": "string",
                  "description": "Where to POST; a secret (incoming-webhook URLs carry credentials): keep it in the environment."
                },
                "format": {
                  "description": "The body: the event (json), or a message of TEXT for Slack, Discord or Microsoft Teams.",
                  "anyOf": [
                    {
                      "enum": [
                        "json",
                        "slack",
                        "discord",
                        "teams"
                      ]
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "json"
                },
                "template": {
                  "type": "string",
                  "description": "Mustache text of the message (slack, discord, teams); a rule's template overrides it. Default: a one-line summary."
                },
                "secret": {
                  "type": "string",
                  "description": "A Standard Webhooks signing secret (whsec_ followed by base64, or raw text): each request then carries webhook-signature."
                },
                "secrets": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  },
                  "minItems": 1,
                  "description": "Several signing secrets while a receiver moves to a new one (one v1 signature each); not with `secret`."
                },
                "headers": {
                  "type": [
                    "object",
                    "null"
                  ],
                  "description": "Extra request headers: name → value. Values are secrets (never logged).",
                  "additionalProperties": {
                    "type": [
                      "string",
                      "number",
                      "boolean",
                      "null"
                    ]
                  }
                },
                "timeout": {
                  "description": "Per request.",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "10s"
                }
              }
            },
            "execSink": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "type",
                "command"
              ],
              "description": "A local command per delivery, the event JSON on standard input.",
              "properties": {
                "type": {
                  "const": "exec",
                  "description": "The sink's type."
                },
                "command": {
                  "description": "A list [program, arg, ...] run without a shell, each argument a Mustache template; or a string run by /bin/sh -c without templating.",
                  "anyOf": [
                    {
                      "type": "array",
                      "minItems": 1,
                      "items": {
                        "type": [
                          "string",
                          "null"
                        ]
                      }
                    },
                    {
                      "type": "string"
                    }
                  ]
                },
                "timeout": {
                  "description": "The command is stopped past this (SIGTERM, then SIGKILL).",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "10s"
                },
                "env": {
                  "description": "Variables for the command: a list of names passed on from chatbridge's environment, or a map of values.",
                  "anyOf": [
                    {
                      "type": "array",
                      "items": {
                        "type": "string",
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
                      }
                    },
                    {
                      "type": "object",
                      "propertyNames": {
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
                      },
                      "additionalProperties": {
                        "type": [
                          "string",
                          "number",
                          "boolean",
                          "null"
                        ]
                      }
                    },
                    {
                      "type": "null"
                    }
                  ]
                }
              }
            },
            "httpSink": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "type",
                "url"
              ],
              "description": "Any HTTP request, shaped by Mustache templates; each value escaped for where it lands. See docs/sinks.md.",
              "properties": {
                "type": {
                  "const": "http",
                  "description": "The sink's type."
                },
                "method": {
                  "description": "The request method; GET and DELETE send no body.",
                  "anyOf": [
                    {
                      "enum": [
                        "POST",
                        "PUT",
                        "PATCH",
                        "GET",
                        "DELETE"
                      ]
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "POST"
                },
                "url": {
                  "type": "string",
                  "description": "The URL template; scheme and host written out. Values are percent-encoded. A secret."
                },
                "headers": {
                  "type": [
                    "object",
                    "null"
                  ],
                  "description": "Header name → value template (one line). Values are secrets.",
                  "additionalProperties": {
                    "type": [
                      "string",
                      "number",
                      "boolean",
                      "null"
                    ]
                  }
                },
                "content_type": {
                  "type": "string",
                  "description": "The body's media type; a JSON type (application/json, *+json) makes the body checked as JSON.",
                  "default": "application/json"
                },
                "body": {
                  "type": "string",
                  "description": "The body template; in a JSON body write text values inside quotes (\"{{chat.name}}\") and other values as {{json.PATH}}. Default: the event JSON."
                },
                "secret": {
                  "type": "string",
                  "description": "A Standard Webhooks signing secret (whsec_ followed by base64, or raw text): each request then carries webhook-signature."
                },
                "secrets": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  },
                  "minItems": 1,
                  "description": "Several signing secrets while a receiver moves to a new one (one v1 signature each); not with `secret`."
                },
                "timeout": {
                  "description": "Per request.",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "10s"
                }
              }
            },
            "delivery": {
              "type": [
                "object",
                "null"
              ],
              "additionalProperties": false,
              "description": "The retry schedule and concurrency of deliveries.",
              "properties": {
                "max_attempts": {
                  "description": "Attempts before a delivery is dead (kept, listed, replayable).",
                  "anyOf": [
                    {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 1000000
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": 10
                },
                "initial_backoff": {
                  "description": "The first retry waits up to this; exponential, full jitter.",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "1s"
                },
                "max_backoff": {
                  "description": "No retry waits longer than this.",
                  "anyOf": [
                    {
                      "type": "string",
                      "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": "10m"
                },
                "concurrency": {
                  "description": "Deliveries in flight per sink.",
                  "anyOf": [
                    {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 10000
                    },
                    {
                      "$ref": "#/$defs/substitution"
                    }
                  ],
                  "default": 8
                }
              }
            },
            "http": {
              "type": [
                "object",
                "null"
              ],
              "additionalProperties": false,
              "description": "Serves /metrics (Prometheus) and /healthz; off unless set.",
              "properties": {
                "listen": {
                  "type": "string",
                  "description": "HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464."
                }
              }
            }
          }
        }

        """#

    /// The schema of a rule file, `rules/*.yaml` (JSON Schema 2020-12).
    package static let ruleJSON = #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "https://chatbridge.invalid/schema/rule.schema.json",
          "title": "chatbridge rule file (rules/*.yaml)",
          "description": "One rule, or a list of rules under `rules:`.",
          "oneOf": [
            {
              "$ref": "#/$defs/rule"
            },
            {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "rules"
              ],
              "properties": {
                "rules": {
                  "type": [
                    "array",
                    "null"
                  ],
                  "description": "The rules of the file; each needs a name.",
                  "items": {
                    "allOf": [
                      {
                        "$ref": "#/$defs/rule"
                      },
                      {
                        "required": [
                          "name"
                        ]
                      }
                    ]
                  }
                }
              }
            }
          ],
          "$defs": {
            "rule": {
              "type": "object",
              "additionalProperties": false,
              "description": "Which events matter and where they go.",
              "properties": {
                "name": {
                  "type": "string",
                  "description": "Unique; letters, digits, _, . and - (at most 100). Defaults to the file's name.",
                  "pattern": "^[A-Za-z0-9_.-]{1,100}$"
                },
                "description": {
                  "type": [
                    "string",
                    "null"
                  ],
                  "description": "What the rule is for, in words."
                },
                "on": {
                  "description": "Event types or change kinds (any of them); default: every event.",
                  "anyOf": [
                    {
                      "type": "array",
                      "items": {
                        "$ref": "#/$defs/trigger"
                      }
                    },
                    {
                      "$ref": "#/$defs/trigger"
                    }
                  ]
                },
                "when": {
                  "type": [
                    "string",
                    "boolean"
                  ],
                  "description": "A CEL condition over event, chat, previous, changes, kinds...; default: true."
                },
                "send": {
                  "description": "Sink names from the configuration; default: [stdout].",
                  "anyOf": [
                    {
                      "type": "array",
                      "items": {
                        "type": "string"
                      }
                    },
                    {
                      "type": "string"
                    }
                  ],
                  "default": [
                    "stdout"
                  ]
                },
                "throttle": {
                  "type": [
                    "string",
                    "null"
                  ],
                  "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$",
                  "description": "At most one delivery per chat per this duration."
                },
                "template": {
                  "type": [
                    "string",
                    "null"
                  ],
                  "description": "Mustache text for slack/discord/teams/exec; overrides the sink's."
                },
                "enabled": {
                  "type": "boolean",
                  "default": true,
                  "description": "false: the rule is kept but never matches."
                },
                "quiet_hours": {
                  "type": [
                    "object",
                    "null"
                  ],
                  "additionalProperties": false,
                  "required": [
                    "from",
                    "to"
                  ],
                  "description": "Deliveries due in this daily window wait until it ends.",
                  "properties": {
                    "from": {
                      "type": "string",
                      "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                      "description": "Start, HH:MM."
                    },
                    "to": {
                      "type": "string",
                      "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                      "description": "End, HH:MM."
                    },
                    "timezone": {
                      "type": "string",
                      "description": "An IANA time zone such as Europe/Paris; default: the machine's."
                    }
                  }
                },
                "digest": {
                  "type": [
                    "string",
                    "null"
                  ],
                  "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$",
                  "description": "Gathers matches into one digest delivery per this window."
                }
              }
            },
            "trigger": {
              "type": "string",
              "enum": [
                "chat.added",
                "chat.changed",
                "chat.removed",
                "account.error",
                "account.recovered",
                "unread.increased",
                "unread.decreased",
                "unread.cleared",
                "chat.archived",
                "chat.unarchived",
                "chat.pinned",
                "chat.unpinned",
                "chat.muted",
                "chat.unmuted",
                "chat.mute_changed",
                "chat.renamed",
                "chat.activity",
                "chat.read_only_changed",
                "chat.moved",
                "chat.updated"
              ],
              "description": "An event type or change kind."
            }
          }
        }

        """#
}
