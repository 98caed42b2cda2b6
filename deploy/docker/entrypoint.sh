#!/bin/sh
# Start the TG-Matrix service this image was built for (TGM_SERVICE), or run the given command.
set -eu

module_of() {
    case "$1" in
        gateway) echo tgm_gateway ;;
        tg-session) echo tgm_session ;;
        campaign) echo tgm_campaign ;;
        ai) echo tgm_ai ;;
        analytics) echo tgm_analytics ;;
        tailchat) echo tgm_tailchat ;;
        *) return 1 ;;
    esac
}

service="${TGM_SERVICE:-}"
if [ "$#" -gt 0 ]; then
    if module_of "$1" >/dev/null; then
        service="$1"
        shift
    else
        exec "$@"
    fi
fi

if [ -z "$service" ]; then
    echo "tgm-entrypoint: set TGM_SERVICE or pass a service name (gateway, tg-session, campaign, ai, analytics, tailchat)" >&2
    exit 64
fi
module="$(module_of "$service")" || {
    echo "tgm-entrypoint: unknown service '$service' (gateway, tg-session, campaign, ai, analytics, tailchat)" >&2
    exit 64
}
# The health checker reads TGM_SERVICE to pick the right port.
export TGM_SERVICE="$service"
# exec: the Python process is PID 1's child no more; it receives SIGTERM directly and drains.
exec python -m "$module" "$@"
