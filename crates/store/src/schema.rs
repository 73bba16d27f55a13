//! diesel's view of the tables in `migrations/`; kept by hand, checked by the integration tests.
//! Column order matters: rows are read positionally from `RETURNING` lists, so each table lists
//! its columns in the order the migrations create them (added columns last).
#![allow(missing_docs)]

diesel::table! {
    devices (id) {
        id -> BigInt,
        name -> Text,
        session_id -> Text,
        phone_number -> Text,
        status -> Text,
        secret_token_hash -> Text,
        secret_token_masked -> Text,
        webhook_status -> Bool,
        webhook_url -> Nullable<Text>,
        webhook_options -> Nullable<Text>,
        opening_message -> Nullable<Text>,
        closing_message -> Nullable<Text>,
        auto_reply -> Nullable<Text>,
        auto_forward -> Nullable<Text>,
        auto_forward_number -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        revision -> BigInt,
        pace_last_send_at -> Nullable<Timestamp>,
        pace_next_slot_at -> Nullable<Timestamp>,
        pace_in_flight_until -> Nullable<Timestamp>,
        pacing_min_interval_ms -> Nullable<BigInt>,
        pacing_jitter_ms -> Nullable<BigInt>,
        timezone -> Nullable<Text>,
        daily_cap -> Nullable<BigInt>,
        send_window_start -> Nullable<Text>,
        send_window_end -> Nullable<Text>,
        recipient_hourly_cap -> Nullable<BigInt>,
        simulate_typing -> Bool,
        paused_until -> Nullable<Timestamp>,
        pause_reason -> Nullable<Text>,
        webhook_hmac_key -> Nullable<Text>,
        session_sync_due_at -> Nullable<Timestamp>,
        session_sync_published_at -> Nullable<Timestamp>,
        session_sync_lease_until -> Nullable<Timestamp>,
        session_sync_attempts -> Integer,
        session_sync_error -> Nullable<Text>,
        session_synced_at -> Nullable<Timestamp>,
        waha_server_id -> Nullable<BigInt>,
        webhook_secret -> Nullable<Text>,
        opt_out_keywords -> Nullable<Text>,
        opt_out_confirmation -> Nullable<Text>,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        device_id -> BigInt,
        session_id -> Text,
        batch_id -> Nullable<Text>,
        is_queue -> Bool,
        recipient -> Text,
        message_type -> Text,
        message -> Nullable<Text>,
        file_mimetype -> Nullable<Text>,
        file_filename -> Nullable<Text>,
        file_url -> Nullable<Text>,
        calendar_type -> Text,
        schedule_at -> Nullable<Timestamp>,
        status -> Text,
        is_sent -> Bool,
        provider_message_id -> Nullable<Text>,
        api_response -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        read_at -> Nullable<Timestamp>,
        status_updated_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        revision -> BigInt,
        cancel_reason -> Nullable<Text>,
        due_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
        relay_lease_until -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        wa_message_id -> Nullable<Text>,
        attempts -> Integer,
        traceparent -> Nullable<Text>,
        pace_slot_at -> Nullable<Timestamp>,
        hold_reason -> Nullable<Text>,
        admitted_at -> Nullable<Timestamp>,
        origin -> Text,
    }
}

diesel::table! {
    idempotency_keys (scope, idempotency_key) {
        scope -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        response_status -> Integer,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    suppressions (id) {
        id -> BigInt,
        device_id -> BigInt,
        phone -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    waha_servers (id) {
        id -> BigInt,
        name -> Text,
        base_url -> Text,
        api_key -> Nullable<Text>,
        capacity -> BigInt,
        state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    waha_events (id) {
        id -> BigInt,
        event_id -> Text,
        session_id -> Text,
        event -> Text,
        body -> Text,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        attempts -> Integer,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    inbound_messages (id) {
        id -> BigInt,
        device_id -> BigInt,
        session_id -> Text,
        provider_message_id -> Text,
        chat_id -> Text,
        sender -> Nullable<Text>,
        sender_lid -> Nullable<Text>,
        is_group -> Bool,
        message_type -> Text,
        message -> Nullable<Text>,
        has_media -> Bool,
        media_url -> Nullable<Text>,
        media_mimetype -> Nullable<Text>,
        media_filename -> Nullable<Text>,
        sent_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        device_id -> BigInt,
        contact -> Text,
        opened_at -> Timestamp,
        last_inbound_at -> Timestamp,
        last_auto_reply_at -> Nullable<Timestamp>,
        closing_due_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        device_id -> BigInt,
        webhook_id -> Text,
        event -> Text,
        url -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        due_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
        relay_lease_until -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        give_up_at -> Timestamp,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        response_body -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    instance_settings (name) {
        name -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(messages -> devices (device_id));
diesel::joinable!(inbound_messages -> devices (device_id));
diesel::table! {
    message_attempts (id) {
        id -> BigInt,
        message_id -> BigInt,
        attempt -> Integer,
        outcome -> Text,
        hold_reason -> Nullable<Text>,
        api_response -> Nullable<Text>,
        repeats -> Integer,
        first_at -> Timestamp,
        last_at -> Timestamp,
    }
}

diesel::joinable!(conversations -> devices (device_id));
diesel::joinable!(message_attempts -> messages (message_id));
diesel::joinable!(webhook_deliveries -> devices (device_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(devices -> waha_servers (waha_server_id));
diesel::joinable!(suppressions -> devices (device_id));
diesel::allow_tables_to_appear_in_same_query!(
    devices,
    messages,
    idempotency_keys,
    suppressions,
    waha_servers,
    waha_events,
    inbound_messages,
    conversations,
    webhook_deliveries,
    webhook_attempts,
    instance_settings,
    message_attempts
);
