//! Sessions and their refresh tokens, one-time tokens and the outbox, against SQLite and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use shelter_domain::ports::{
    EmailOutbox, NewRefreshToken, RefreshTokenStore, Rotation, UserRepository,
};
use shelter_domain::{
    ClientInfo, EmailAddress, EmailKind, NewUser, PasswordHash, PendingToken, SecretToken,
    SpentLink, TokenPurpose, User, UserChanges, UserId, Username,
};
use shelter_persistence::Database;
use shelter_test_support::{Backend, TestDatabase};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

async fn database(backend: Backend) -> Option<(TestDatabase, Database)> {
    let db = TestDatabase::create(backend).await?;
    let database = db.migrated().await;
    Some((db, database))
}

fn welcome(email: &str, expires_at: DateTime<Utc>) -> PendingToken {
    PendingToken::new(
        EmailAddress::parse(email).expect("email"),
        EmailKind::Welcome,
        "ann".into(),
        expires_at,
    )
}

async fn signup(database: &Database, email: &str, verification: Option<PendingToken>) -> User {
    database
        .users()
        .insert(
            NewUser::new(
                EmailAddress::parse(email).expect("email"),
                Username::parse(&email.replace(['@', '.'], "_")).expect("name"),
                PasswordHash::from_phc("$argon2id$stub".into()),
                now(),
            ),
            verification,
        )
        .await
        .expect("inserted")
}

/// Whether `session` is a live sign-in of `user`, as an authenticated request asks.
async fn is_live(
    database: &Database,
    user: UserId,
    session: shelter_domain::SessionId,
    at: DateTime<Utc>,
) -> bool {
    database
        .users()
        .signed_in(user, session, at)
        .await
        .expect("query")
        .is_some_and(|(_, live)| live)
}

fn refresh(expires_at: DateTime<Utc>) -> (SecretToken, NewRefreshToken) {
    let token = SecretToken::generate();
    let record = NewRefreshToken {
        hash: token.hash(),
        expires_at,
    };
    (token, record)
}

async fn signup_queues_the_welcome_email_and_verification_spends_its_token(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let pending = welcome("ann@example.com", now() + Duration::hours(48));
    let token = pending.email().token.clone();
    let user = signup(&database, "ann@example.com", Some(pending)).await;

    let outbox = database.outbox();
    let queued = outbox
        .claim(now(), Duration::minutes(1), 10)
        .await
        .expect("claimed");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].email.kind, EmailKind::Welcome);
    assert_eq!(queued[0].email.to.as_str(), "ann@example.com");
    assert_eq!(queued[0].email.token.expose(), token.expose());
    assert_eq!(queued[0].attempts, 1);

    let users = database.users();
    let state = |at: DateTime<Utc>, token: SecretToken| {
        let users = &users;
        async move {
            users
                .link_state(TokenPurpose::VerifyEmail, &token.hash(), at)
                .await
                .expect("query")
        }
    };
    assert_eq!(state(now(), token.clone()).await, SpentLink::Usable);
    assert_eq!(
        state(now(), SecretToken::generate()).await,
        SpentLink::Unknown
    );
    let late = users
        .verify_email(&token.hash(), now() + Duration::hours(49))
        .await
        .expect("query");
    assert!(late.is_none(), "an expired token verifies nothing");
    assert_eq!(
        state(now() + Duration::hours(49), token.clone()).await,
        SpentLink::Expired
    );
    let verified = users
        .verify_email(&token.hash(), now() + Duration::minutes(1))
        .await
        .expect("query")
        .expect("verified");
    assert!(verified.email_verified());
    assert_eq!(verified.id(), user.id());
    assert_eq!(verified.revision(), user.revision() + 1);
    let again = users
        .verify_email(&token.hash(), now() + Duration::minutes(2))
        .await
        .expect("query");
    assert!(again.is_none(), "single use");
    assert_eq!(state(now(), token.clone()).await, SpentLink::Used);
    let reset = users
        .link_state(TokenPurpose::ResetPassword, &token.hash(), now())
        .await
        .expect("query");
    assert_eq!(reset, SpentLink::Unknown, "a token of another purpose");
}

async fn a_verification_link_for_a_former_address_verifies_nothing(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let pending = welcome("old@example.com", now() + Duration::hours(48));
    let token = pending.email().token.clone();
    let user = signup(&database, "old@example.com", Some(pending)).await;
    database
        .users()
        .update(
            user.id(),
            None,
            UserChanges::default().email(
                EmailAddress::parse("new@example.com").expect("email"),
                user.username(),
                now() + Duration::hours(48),
            ),
            now(),
        )
        .await
        .expect("updated");
    let result = database
        .users()
        .verify_email(&token.hash(), now())
        .await
        .expect("query");
    assert!(result.is_none());
}

async fn a_reset_is_single_use_and_ends_every_session(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let user = signup(&database, "ann@example.com", None).await;
    let users = database.users();
    let sessions = database.refresh_tokens();
    let (session, record) = refresh(now() + Duration::days(30));
    sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");

    let reset = |hours| {
        PendingToken::new(
            user.email().clone(),
            EmailKind::PasswordReset,
            "ann".into(),
            now() + Duration::hours(hours),
        )
    };
    let (first, second) = (reset(1), reset(1));
    let (first_token, second_token) = (first.email().token.clone(), second.email().token.clone());
    for pending in [first, second] {
        users
            .create_one_time_token(user.id(), TokenPurpose::ResetPassword, pending, now())
            .await
            .expect("stored");
    }
    let wrong_purpose = users
        .verify_email(&first_token.hash(), now())
        .await
        .expect("query");
    assert!(
        wrong_purpose.is_none(),
        "a reset token does not verify emails"
    );

    let updated = users
        .reset_password(
            &first_token.hash(),
            PasswordHash::from_phc("new".into()),
            now(),
        )
        .await
        .expect("query")
        .expect("reset");
    assert_eq!(updated.password_hash().as_str(), "new");
    assert_eq!(updated.token_version(), user.token_version() + 1);
    for token in [&first_token, &second_token] {
        let again = users
            .reset_password(&token.hash(), PasswordHash::from_phc("x".into()), now())
            .await
            .expect("query");
        assert!(again.is_none(), "spent, and the other link died with it");
    }
    let (_, replacement) = refresh(now() + Duration::days(30));
    let rotation = sessions
        .rotate(&session.hash(), replacement, now(), Duration::seconds(10))
        .await
        .expect("query");
    assert_eq!(rotation, Rotation::Invalid, "the reset revoked the login");
}

async fn refresh_tokens_rotate_with_a_grace_window_and_reuse_revokes_the_family(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let user = signup(&database, "ann@example.com", None).await;
    let sessions = database.refresh_tokens();
    let grace = Duration::seconds(10);
    let (first, record) = refresh(now() + Duration::days(30));
    let session = sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");

    let (second, record) = refresh(now() + Duration::days(30));
    let rotated = sessions
        .rotate(&first.hash(), record, now(), grace)
        .await
        .expect("query");
    assert_eq!(
        rotated,
        Rotation::Rotated {
            user: user.id(),
            session
        }
    );

    let (third, record) = refresh(now() + Duration::days(30));
    let within = sessions
        .rotate(&first.hash(), record, now() + Duration::seconds(5), grace)
        .await
        .expect("query");
    assert_eq!(
        within,
        Rotation::WithinGrace {
            user: user.id(),
            session
        }
    );

    let (_, record) = refresh(now() + Duration::days(30));
    let reused = sessions
        .rotate(&first.hash(), record, now() + Duration::seconds(60), grace)
        .await
        .expect("query");
    assert_eq!(
        reused,
        Rotation::Reused {
            user: user.id(),
            session
        }
    );
    assert!(
        !is_live(&database, user.id(), session, now() + Duration::seconds(60)).await,
        "reuse ends the session"
    );
    for live in [&second, &third] {
        let (_, record) = refresh(now() + Duration::days(30));
        let after = sessions
            .rotate(&live.hash(), record, now() + Duration::seconds(61), grace)
            .await
            .expect("query");
        assert_eq!(after, Rotation::Invalid, "the whole family is revoked");
    }

    let (expiring, record) = refresh(now() + Duration::minutes(1));
    sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");
    let (_, record) = refresh(now() + Duration::days(30));
    let expired = sessions
        .rotate(
            &expiring.hash(),
            record,
            now() + Duration::minutes(2),
            grace,
        )
        .await
        .expect("query");
    assert_eq!(expired, Rotation::Invalid);
}

async fn a_logout_ends_its_session_once(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let user = signup(&database, "ann@example.com", None).await;
    let sessions = database.refresh_tokens();
    let grace = Duration::seconds(10);
    let (logged_out, record) = refresh(now() + Duration::days(30));
    let session = sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");
    assert_eq!(
        sessions
            .end_by_token(&logged_out.hash(), now())
            .await
            .expect("logout"),
        Some((user.id(), session))
    );
    assert_eq!(
        sessions
            .end_by_token(&logged_out.hash(), now())
            .await
            .expect("logout"),
        None,
        "a session ends once"
    );
    let (_, record) = refresh(now() + Duration::days(30));
    let after_logout = sessions
        .rotate(&logged_out.hash(), record, now(), grace)
        .await
        .expect("query");
    assert_eq!(after_logout, Rotation::Invalid);
    assert_eq!(
        sessions
            .end_by_token(&SecretToken::generate().hash(), now())
            .await
            .expect("an unknown token is ignored"),
        None
    );
}

async fn concurrent_rotations_of_one_token_rotate_it_once(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let user = signup(&database, "ann@example.com", None).await;
    let sessions = Arc::new(database.refresh_tokens());
    let (token, record) = refresh(now() + Duration::days(30));
    sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let sessions = Arc::clone(&sessions);
            let hash = token.hash();
            tokio::spawn(async move {
                let (_, record) = refresh(now() + Duration::days(30));
                sessions
                    .rotate(&hash, record, now(), Duration::seconds(10))
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    for attempt in attempts {
        match attempt
            .await
            .expect("task")
            .expect("no database error under contention")
        {
            Rotation::Rotated { .. } => rotated += 1,
            Rotation::WithinGrace { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
}

async fn two_claimers_never_take_the_same_email(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    for i in 0..200 {
        signup(
            &database,
            &format!("u{i}@example.com"),
            Some(welcome(
                &format!("u{i}@example.com"),
                now() + Duration::hours(1),
            )),
        )
        .await;
    }
    let claimers: Vec<_> = (0..2)
        .map(|_| {
            let outbox = Arc::new(database.outbox());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = outbox
                        .claim(now(), Duration::minutes(5), 7)
                        .await
                        .expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    for email in batch {
                        outbox.mark_sent(email.id, now()).await.expect("sent");
                        mine.push(email.id);
                    }
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for claimer in claimers {
        for id in claimer.await.expect("task") {
            total += 1;
            assert!(seen.insert(id), "email {id} claimed twice");
        }
    }
    assert_eq!((total, seen.len()), (200, 200));
}

async fn a_lease_that_runs_out_makes_the_email_due_again(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    signup(
        &database,
        "ann@example.com",
        Some(welcome("ann@example.com", now() + Duration::hours(1))),
    )
    .await;
    let outbox = database.outbox();
    let lease = Duration::minutes(1);
    let first = outbox.claim(now(), lease, 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        outbox
            .claim(now() + Duration::seconds(30), lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = outbox
        .claim(now() + Duration::minutes(2), lease, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1, "the worker holding it died");
    assert_eq!(again[0].attempts, 2);

    outbox
        .retry_at(
            again[0].id,
            now() + Duration::minutes(10),
            "connection refused",
        )
        .await
        .expect("retry");
    assert!(
        outbox
            .claim(now() + Duration::minutes(5), lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let retried = outbox
        .claim(now() + Duration::minutes(10), lease, 10)
        .await
        .expect("claim");
    assert_eq!(retried.len(), 1);
    outbox
        .mark_failed(retried[0].id, "gave up")
        .await
        .expect("failed");
    assert!(
        outbox
            .claim(now() + Duration::days(1), lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

async fn purge_removes_what_can_no_longer_be_used(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let user = signup(
        &database,
        "ann@example.com",
        Some(welcome("ann@example.com", now() + Duration::hours(1))),
    )
    .await;
    let sessions = database.refresh_tokens();
    let (live, record) = refresh(now() + Duration::days(30));
    let session = sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");
    let (_, record) = refresh(now() + Duration::minutes(1));
    sessions
        .start_session(user.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");
    let outbox = database.outbox();
    let email = outbox
        .claim(now(), Duration::minutes(1), 1)
        .await
        .expect("claim");
    outbox.mark_sent(email[0].id, now()).await.expect("sent");
    let unfinished = shelter_domain::passkeys::Flow {
        purpose: shelter_domain::passkeys::FlowPurpose::SignIn,
        user: None,
        state: "{}".to_owned(),
    };
    let passkeys = database.passkeys();
    let ceremony = SecretToken::generate().hash();
    shelter_domain::passkeys::PasskeyStore::start_flow(
        &passkeys,
        &ceremony,
        &unfinished,
        now() + Duration::minutes(5),
    )
    .await
    .expect("a ceremony begun");

    let purged = database
        .purge(now() + Duration::days(2))
        .await
        .expect("purge");
    assert_eq!(purged.sessions, 1, "{purged:?}");
    assert_eq!(purged.audit_events, 0, "kept for 90 days: {purged:?}");
    assert_eq!(purged.refresh_tokens, 1, "{purged:?}");
    assert_eq!(purged.one_time_tokens, 1, "{purged:?}");
    assert_eq!(purged.passkey_flows, 1, "nobody finished it: {purged:?}");
    assert_eq!(purged.emails, 1, "{purged:?}");
    let (_, record) = refresh(now() + Duration::days(30));
    let still = sessions
        .rotate(
            &live.hash(),
            record,
            now() + Duration::days(2),
            Duration::seconds(1),
        )
        .await
        .expect("query");
    assert_eq!(
        still,
        Rotation::Rotated {
            user: UserId::new(user.id().get()),
            session
        }
    );
    let later = database
        .purge(now() + Duration::days(91))
        .await
        .expect("purge");
    assert!(
        later.audit_events >= 3,
        "the signup and two logins, past their keeping: {later:?}"
    );
}

async fn sessions_are_listed_newest_first_with_their_client_and_end_once(backend: Backend) {
    let Some((_db, database)) = database(backend).await else {
        return;
    };
    let ann = signup(&database, "ann@example.com", None).await;
    let bob = signup(&database, "bob@example.com", None).await;
    let sessions = database.refresh_tokens();
    let phone = ClientInfo::new(Some("203.0.113.7".parse().expect("ip")), Some("Phone/1"));
    let (_, record) = refresh(now() + Duration::days(30));
    let older = sessions
        .start_session(ann.id(), &phone, record, now())
        .await
        .expect("login");
    let (laptop_token, record) = refresh(now() + Duration::days(30));
    let newer = sessions
        .start_session(
            ann.id(),
            &ClientInfo::default(),
            record,
            now() + Duration::hours(1),
        )
        .await
        .expect("login");
    let (_, record) = refresh(now() + Duration::days(30));
    let bobs = sessions
        .start_session(bob.id(), &ClientInfo::default(), record, now())
        .await
        .expect("login");

    let (_, replacement) = refresh(now() + Duration::days(31));
    sessions
        .rotate(
            &laptop_token.hash(),
            replacement,
            now() + Duration::hours(2),
            Duration::seconds(10),
        )
        .await
        .expect("rotate");
    let listed = sessions
        .list(ann.id(), now() + Duration::hours(3))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [newer, older]
    );
    assert_eq!(listed[0].last_used_at, now() + Duration::hours(2));
    assert_eq!(listed[0].expires_at, now() + Duration::days(31));
    assert_eq!(listed[1].client, phone);
    assert_eq!(listed[1].created_at, now());

    assert!(
        !sessions.end(ann.id(), bobs, now()).await.expect("query"),
        "another user's session is not ann's to end"
    );
    assert!(is_live(&database, bob.id(), bobs, now()).await);
    assert!(!is_live(&database, ann.id(), bobs, now()).await);
    assert!(sessions.end(ann.id(), older, now()).await.expect("query"));
    assert!(!sessions.end(ann.id(), older, now()).await.expect("query"));
    assert!(!is_live(&database, ann.id(), older, now()).await);
    assert_eq!(
        sessions
            .list(ann.id(), now())
            .await
            .expect("list")
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [newer]
    );
    assert!(
        !is_live(&database, ann.id(), newer, now() + Duration::days(32)).await,
        "an expired session is not live"
    );
}

shelter_test_support::on_both_backends!(
    signup_queues_the_welcome_email_and_verification_spends_its_token,
    a_verification_link_for_a_former_address_verifies_nothing,
    a_reset_is_single_use_and_ends_every_session,
    refresh_tokens_rotate_with_a_grace_window_and_reuse_revokes_the_family,
    concurrent_rotations_of_one_token_rotate_it_once,
    a_logout_ends_its_session_once,
    sessions_are_listed_newest_first_with_their_client_and_end_once,
    two_claimers_never_take_the_same_email,
    a_lease_that_runs_out_makes_the_email_due_again,
    purge_removes_what_can_no_longer_be_used,
);
