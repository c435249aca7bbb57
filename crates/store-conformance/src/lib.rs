//! The conformance suite every [`Store`] implementation runs.
//!
//! A store crate's integration test calls [`conformance_suite!`] with an async factory that
//! returns a fresh, migrated, empty store (or `None` to skip when its database server is not
//! configured outside CI). Each case becomes its own `#[tokio::test]`, so failures name the case.

pub mod cases;
mod outbox_cases;

use helpline_core::store::Store;
use std::future::Future;
use std::pin::Pin;

/// A fresh store for one test, and how to dispose of it afterwards.
pub struct TestStore {
    /// The store under test.
    pub store: Box<dyn Store>,
    /// Runs after the case (drops the per-test database, removes files).
    pub cleanup: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl TestStore {
    /// Runs the cleanup.
    pub async fn finish(self) {
        drop(self.store);
        if let Some(cleanup) = self.cleanup {
            cleanup.await;
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each given a store from `$factory`
/// (an `async fn() -> Option<TestStore>`).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory,
            seeded_catalogues,
            catalogue_inserts_and_uniqueness,
            ticket_views_see_catalogue_changes_at_once,
            find_or_create_user_is_case_insensitive,
            concurrent_find_or_create_makes_one_user,
            users_page_by_id,
            ticket_insert_round_trips_and_reports_number_collisions,
            entries_keep_order_and_attachments_dedupe,
            events_are_recorded_per_ticket_and_system,
            collaborators_are_added_once_and_removed,
            api_keys_store_hashes_and_revoke,
            sequences_count_per_name,
            failed_work_rolls_back_everything,
            concurrent_units_commit_or_fail_alone,
            open_ticket_service_writes_ticket_entry_and_events,
            open_ticket_with_bad_references_writes_nothing,
            sequential_ticket_numbers,
            sequential_numbers_skip_taken_ones,
            row_counts_follow_writes,
            concurrent_ticket_creation_keeps_numbers_unique,
            status_by_id,
            tickets_filter_alone_and_combined,
            tickets_state_open_closed_archived,
            tickets_page_without_skips_or_repeats,
            tickets_full_text_search,
            tickets_full_text_hostile_input_is_plain_text,
            markup_is_not_searched,
            very_large_entries_are_stored_and_searchable,
            lock_and_update_ticket_round_trip,
            idempotency_claim_complete_then_replay,
            idempotency_expired_claim_is_replaced,
            idempotency_purge_counts,
            idempotency_rolled_back_claim_leaves_key_free,
            concurrent_idempotent_requests_run_once,
            entry_flags_round_trip,
            inbound_insert_round_trips_bytes,
            inbound_same_source_uid_is_stored_once,
            finish_inbound_stores_outcome_and_counts_attempts,
            finished_inbound_is_stored_with_its_outcome,
            inbound_list_by_status_pages,
            entry_by_message_id_finds_newest,
            settings_init_once,
            mailbox_insert_round_trips,
            mailbox_duplicates_are_refused,
            mailboxes_list_by_id,
            mailbox_lease_is_exclusive_until_it_expires,
            mailbox_fetched_records_and_clears_error,
            mailbox_delete,
            jobs_insert_claim_and_finish,
            claims_skip_jobs_not_due_or_of_other_kinds,
            stale_attempts_cannot_finish_a_job,
            several_jobs_finish_in_one_call,
            expired_claims_are_taken_over_and_released_claims_return_at_once,
            dead_and_done_jobs_are_requeued,
            done_jobs_are_purged_and_topics_counted,
            concurrent_claims_never_share_a_job,
            webhooks_round_trip_and_take_their_deliveries_along,
            changes_are_announced_in_their_own_transaction,
            changes_nobody_can_hear_are_not_announced,
            next_job_due_is_the_earliest_pending,
            legacy_ids_map_each_source_record_once,
            organizations_and_slas_round_trip,
            added_statuses_and_priorities_are_not_defaults,
            import_catalogue_names_are_unique_regardless_of_case,
            imported_users_keep_addresses_organization_and_times,
            import_user_with_a_taken_address_writes_nothing,
            imported_staff_keep_state_hash_and_creation_time
        );
    };
    (@cases $factory:path, $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some(test_store) = $factory().await else {
                return;
            };
            $crate::cases::$case(&*test_store.store).await;
            test_store.finish().await;
        }
    )*};
}
