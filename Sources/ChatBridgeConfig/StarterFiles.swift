extension ChatBridgeConfiguration {
    /// Where `chatbridge init DIR` writes ``starterConfigYAML``, relative to DIR.
    package static let starterConfigRelativePath = "config/chatbridge.yaml"
    /// Where `chatbridge init DIR` writes ``starterRuleYAML``, relative to DIR.
    package static let starterRuleRelativePath = "rules/linkedin-inmail-unread.yaml"

    /// The commented configuration `chatbridge init` writes (its first line points
    /// editors at ``ConfigurationSchema/configJSON``, written beside it): one source whose API key
    /// comes from `${UNIPILE_API_KEY}`, and every option with its default and what it does.
    /// It loads as it is once `UNIPILE_API_KEY` is set (a test makes sure of it).
    package static let starterConfigYAML = """
        # yaml-language-server: $schema=../schema/chatbridge.schema.json
        # chatbridge configuration.
        #
        # Relative paths below (store, rules) are relative to the folder that holds this
        # config/ folder: with /srv/bridge/config/chatbridge.yaml, `store: state/chatbridge.sqlite`
        # is /srv/bridge/state/chatbridge.sqlite.
        #
        # ${NAME} is replaced by the environment variable NAME, ${NAME:-default} gives a
        # default, $$ is a literal $. Keep secrets (API keys, webhook URLs) in the environment.
        # Durations take ms, s, m, h, d: 500ms, 30s, 5m, 1h30m, 30d.

        sources:                         # one or more Unipile instances / account sets to poll
          - name: main                   # unique, a-z 0-9 _ -; appears in events as "source"
            url: https://api1.unipile.com:13111   # your Unipile DSN, with https://; /api/v1/chats is appended
            api_key: ${UNIPILE_API_KEY}  # sent as X-API-KEY
            interval: 30s                # time between poll starts (up to 10% jitter is added)
            page_size: 250               # 1..250 chats per request (the API's `limit`)
            # account_type: LINKEDIN     # only this provider: WHATSAPP LINKEDIN SLACK TWITTER MESSENGER INSTAGRAM TELEGRAM
            # account_ids: [acc_1]       # only these accounts
            # unread: true               # only unread chats (then "removed" means "no longer unread")
            timeout: 30s                 # per request
            max_requests_per_second: 5   # across all requests of this source; 0 = no limit

        store: state/chatbridge.sqlite   # SQLite database; created with its folder when missing
        rules: rules/                    # a folder of *.yaml rule files, or one file
        baseline: silent                 # silent | emit: what the first complete poll of a source produces
        retention: 30d                   # events and finished deliveries older than this are pruned

        sinks:                           # named destinations that rules send to
          stdout:
            type: stdout                 # one JSON line per delivery on standard output (always exists)
          # team-slack:
          #   type: webhook
          #   url: ${SLACK_WEBHOOK_URL}  # POSTed to; never logged
          #   format: slack              # json (default) | slack | discord | teams
          #   template: "{{chat.name}}: {{chat.unread_count}} unread"   # optional Mustache text
          #   secret: ${WEBHOOK_SECRET}  # optional: Standard Webhooks signature (whsec_... or raw)
          #   headers: { X-Team: sales } # optional extra headers
          #   timeout: 10s               # per request
          # notify:
          #   type: exec
          #   command: ["/usr/local/bin/notify", "--title", "{{chat.name}}"]   # argv, no shell; event JSON on stdin
          #   timeout: 10s               # then SIGTERM, and SIGKILL 5s later

        delivery:
          max_attempts: 10               # then the delivery is dead (kept, listed, replayable)
          initial_backoff: 1s            # retries back off exponentially, with full jitter...
          max_backoff: 10m               # ...up to this
          concurrency: 8                 # deliveries in flight per sink

        # http:
        #   listen: 127.0.0.1:9464       # off unless set: /metrics (Prometheus) and /healthz

        """

    /// The example rule `chatbridge init` writes: the LinkedIn InMail rule of the rules
    /// documentation, sending to `stdout` so that it works before any sink is set up.
    package static let starterRuleYAML = """
        # yaml-language-server: $schema=../schema/rule.schema.json
        # A rule: which events matter and where they go. Every *.yaml file in rules/ holds
        # one rule like this one, or a list of them under `rules:`.

        name: linkedin-inmail-unread            # unique; defaults to the file's name
        description: A LinkedIn InMail has new unread messages
        on: [unread.increased, chat.added]      # event kinds or types; any of them (default: every event)
        when: >                                 # a CEL expression over event, chat, previous, changes, kinds...
          chat.account_type == "LINKEDIN" && chat.content_type == "inmail"
          && chat.unread_count > 0
        send: [stdout]                          # sink names from config/chatbridge.yaml
        throttle: 15m                           # at most one delivery per chat per 15 minutes
        template: "New InMail in {{chat.name}} ({{chat.unread_count}} unread)"   # text for slack/discord/teams/exec
        enabled: true

        """

    /// The second rule `chatbridge init` writes: once any rule exists, an event no rule
    /// matches goes nowhere, so an expired API key or a disconnected account
    /// (`account.error`) would otherwise reach no one.
    package static let starterAccountRuleYAML = """
        # yaml-language-server: $schema=../schema/rule.schema.json
        # The account needs a person: Unipile answered 401/403 (an expired API key, a
        # disconnected account), and later it works again. Once any rule exists, events
        # that no rule matches go nowhere: keep this rule so that these reach someone.

        name: account-problems
        description: The Unipile account or API key needs a person, or works again
        on: [account.error, account.recovered]
        send: [stdout]                          # point it at a sink a person reads

        """
}
