//! `SeaOrmUserRepository` against real SQLite files and real PostgreSQL databases.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shelter_domain::ports::UserRepository;
use shelter_domain::{
    EmailAddress, ListedUser, NewUser, Page, PasswordHash, StoreError, Totp, UserChanges,
    UserFilter, UserId, Username,
};
use shelter_persistence::SeaOrmUserRepository;
use shelter_test_support::{Backend, TestDatabase};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn new_user(email: &str, username: &str, superuser: bool) -> NewUser {
    let user = NewUser::new(
        EmailAddress::parse(email).expect("email"),
        Username::parse(username).expect("username"),
        PasswordHash::from_phc("$argon2id$stub".into()),
        now(),
    );
    if superuser { user.superuser() } else { user }
}

/// One page, kept.
async fn page_of(
    users: &SeaOrmUserRepository,
    filter: &UserFilter,
    page: Page,
) -> (Vec<ListedUser<String>>, u64) {
    let mut listed = Vec::new();
    let total = users.list(filter, page, &mut listed).await.expect("listed");
    (listed, total)
}

async fn repository(backend: Backend) -> Option<(TestDatabase, Arc<SeaOrmUserRepository>)> {
    let db = TestDatabase::create(backend).await?;
    let users = Arc::new(db.migrated().await.users());
    Some((db, users))
}

async fn stores_and_finds_users_ignoring_case(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    let created = users
        .insert(new_user("ann@example.com", "Ann", false), None)
        .await
        .expect("inserted");
    assert_eq!((created.revision(), created.token_version()), (1, 1));
    assert!(created.is_active() && !created.is_superuser() && !created.email_verified());
    assert_eq!(created.created_at(), now());

    let by_id = users.find_by_id(created.id()).await.expect("query");
    assert_eq!(by_id.as_ref(), Some(&created));
    for email in ["ann@example.com", "ANN@Example.com"] {
        let email = EmailAddress::parse(email).expect("email");
        let found = users.find_by_email(&email).await.expect("query");
        assert_eq!(found.map(|u| u.id()), Some(created.id()), "email {email}");
    }
    for name in ["ann", "ANN", "Ann"] {
        let name = Username::parse(name).expect("username");
        let found = users.find_by_username(&name).await.expect("query");
        assert_eq!(found.map(|u| u.id()), Some(created.id()), "username {name}");
    }
    let nobody = Username::parse("nobody").expect("username");
    assert!(
        users
            .find_by_username(&nobody)
            .await
            .expect("query")
            .is_none()
    );
    assert!(
        users
            .find_by_id(UserId::new(999))
            .await
            .expect("query")
            .is_none()
    );
}

async fn duplicates_are_refused_by_the_database(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    users
        .insert(new_user("ann@example.com", "ann", false), None)
        .await
        .expect("first insert");
    let email = users
        .insert(new_user("ANN@example.com", "other", false), None)
        .await;
    assert!(matches!(email, Err(StoreError::EmailTaken)), "{email:?}");
    let username = users
        .insert(new_user("other@example.com", "ANN", false), None)
        .await;
    assert!(
        matches!(username, Err(StoreError::UsernameTaken)),
        "{username:?}"
    );
}

async fn concurrent_signups_with_one_email_create_exactly_one_user(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    let attempts = (0..30).map(|i| {
        let users = Arc::clone(&users);
        tokio::spawn(async move {
            users
                .insert(
                    new_user("race@example.com", &format!("racer{i}"), false),
                    None,
                )
                .await
        })
    });
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(_) => created += 1,
            Err(StoreError::EmailTaken) => {}
            Err(other) => panic!("unexpected error under contention: {other:?}"),
        }
    }
    assert_eq!(created, 1);
}

async fn updates_bump_the_revision_and_check_it(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    let ann = users
        .insert(new_user("ann@example.com", "ann", false), None)
        .await
        .expect("inserted");
    users
        .insert(new_user("bob@example.com", "bob", false), None)
        .await
        .expect("inserted");
    let later = now() + chrono::Duration::minutes(5);
    let renamed = users
        .update(
            ann.id(),
            Some(1),
            UserChanges::default()
                .username(Username::parse("anna").expect("name"))
                .password(PasswordHash::from_phc("new".into())),
            later,
        )
        .await
        .expect("updated");
    assert_eq!(renamed.username().as_str(), "anna");
    assert_eq!(renamed.password_hash().as_str(), "new");
    assert_eq!((renamed.revision(), renamed.token_version()), (2, 2));
    assert_eq!(renamed.updated_at(), later);
    assert_eq!(renamed.created_at(), now());

    let stale = users
        .update(ann.id(), Some(1), UserChanges::default(), later)
        .await;
    assert!(
        matches!(stale, Err(StoreError::RevisionMismatch)),
        "{stale:?}"
    );
    let taken = users
        .update(
            ann.id(),
            None,
            UserChanges::default().email(
                EmailAddress::parse("BOB@example.com").expect("email"),
                ann.username(),
                later,
            ),
            later,
        )
        .await;
    assert!(matches!(taken, Err(StoreError::EmailTaken)), "{taken:?}");
    let missing = users
        .update(UserId::new(999), None, UserChanges::default(), later)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn the_last_active_superuser_stays(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    let admin = users
        .insert(new_user("admin@example.com", "admin", true), None)
        .await
        .expect("inserted");
    let demote = UserChanges::default().superuser(false);
    let deactivate = UserChanges::default().active(false);
    for changes in [demote.clone(), deactivate] {
        let result = users.update(admin.id(), None, changes, now()).await;
        assert!(
            matches!(result, Err(StoreError::LastSuperuser)),
            "{result:?}"
        );
    }
    let delete = users.delete(admin.id(), None).await;
    assert!(
        matches!(delete, Err(StoreError::LastSuperuser)),
        "{delete:?}"
    );

    let second = users
        .insert(new_user("second@example.com", "second", true), None)
        .await
        .expect("inserted");
    users
        .update(admin.id(), None, demote, now())
        .await
        .expect("another superuser remains");
    let delete = users.delete(second.id(), None).await;
    assert!(
        matches!(delete, Err(StoreError::LastSuperuser)),
        "{delete:?}"
    );
    let missing = users.delete(UserId::new(999), None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn two_superusers_demoting_each_other_at_once_leave_one(backend: Backend) {
    for round in 0..5 {
        let Some((_db, users)) = repository(backend).await else {
            return;
        };
        let a = users
            .insert(new_user("a@example.com", "aaa", true), None)
            .await
            .expect("inserted");
        let b = users
            .insert(new_user("b@example.com", "bbb", true), None)
            .await
            .expect("inserted");
        let demote = |id: UserId| {
            let users = Arc::clone(&users);
            tokio::spawn(async move {
                let changes = UserChanges::default().superuser(false);
                users.update(id, None, changes, now()).await
            })
        };
        let (first, second) = (demote(a.id()), demote(b.id()));
        let results = [first.await.expect("task"), second.await.expect("task")];
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::LastSuperuser)))
            .count();
        assert_eq!((ok, refused), (1, 1), "round {round}: {results:?}");
        let (all, _) = page_of(
            &users,
            &UserFilter::default(),
            Page::new(0, 100).expect("page"),
        )
        .await;
        let superusers = all.iter().filter(|u| u.is_active && u.is_superuser).count();
        assert_eq!(superusers, 1, "round {round}");
    }
}

async fn lists_pages_in_id_order_with_the_total(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    for i in 0..5 {
        users
            .insert(
                new_user(&format!("u{i}@example.com"), &format!("user{i}"), false),
                None,
            )
            .await
            .expect("inserted");
    }
    let (page, total) = page_of(
        &users,
        &UserFilter::default(),
        Page::new(1, 2).expect("page"),
    )
    .await;
    assert_eq!(total, 5);
    let names: Vec<_> = page
        .iter()
        .map(|u| u.username.as_str().to_owned())
        .collect();
    assert_eq!(names, ["user1", "user2"]);
    let (beyond, total) = page_of(
        &users,
        &UserFilter::default(),
        Page::new(Page::MAX_SKIP, 100).expect("page"),
    )
    .await;
    assert!(beyond.is_empty());
    assert_eq!(total, 5);
}

async fn filters_search_email_and_username_ignoring_case_and_count_what_they_show(
    backend: Backend,
) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    for (email, name, superuser) in [
        ("Ann.Smith@Example.com", "annie", false),
        ("bob@example.com", "BobAnn", true),
        ("carol@example.com", "carol", false),
        ("dan@example.com", "dan_100", false),
    ] {
        users
            .insert(new_user(email, name, superuser), None)
            .await
            .expect("inserted");
    }
    let page = Page::new(0, 100).expect("page");
    let names = |found: &[ListedUser<String>]| -> Vec<String> {
        found
            .iter()
            .map(|u| u.username.as_str().to_owned())
            .collect()
    };
    let search = |text: &str| UserFilter::default().search(text).expect("short");
    let (found, total) = page_of(&users, &search("ANN"), page).await;
    assert_eq!(
        (names(&found), total),
        (vec!["annie".into(), "BobAnn".into()], 2)
    );
    // LIKE's wildcards are literal: "%" and "_" match only themselves.
    let (found, _) = page_of(&users, &search("%"), page).await;
    assert!(found.is_empty(), "{:?}", names(&found));
    let (found, _) = page_of(&users, &search("_"), page).await;
    assert_eq!(names(&found), ["dan_100"]);
    let mut admins = search("ann");
    admins.is_superuser = Some(true);
    let (found, total) = page_of(&users, &admins, page).await;
    assert_eq!((names(&found), total), (vec!["BobAnn".into()], 1));
    let one = Page::new(1, 1).expect("page");
    let (found, total) = page_of(&users, &search("example"), one).await;
    assert_eq!(
        (names(&found), total),
        (vec!["BobAnn".into()], 4),
        "a page of the filtered set, total of all of it"
    );
}

/// The total is kept by triggers: concurrent signups, refused duplicates (rolled back) and
/// deletions all leave it equal to the number of rows.
async fn the_total_follows_concurrent_inserts_refusals_and_deletions(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    let inserts = (0..12).map(|i| {
        let users = Arc::clone(&users);
        tokio::spawn(async move {
            // Every third one repeats an email: refused, so it must not count.
            let email = format!("c{}@example.com", i - i % 3 * usize::from(i % 3 == 2));
            users
                .insert(new_user(&email, &format!("count{i}"), false), None)
                .await
        })
    });
    let mut created = Vec::new();
    for insert in inserts {
        if let Ok(user) = insert.await.expect("joined") {
            created.push(user);
        }
    }
    let total = |users: Arc<SeaOrmUserRepository>| async move {
        let (page, total) = page_of(
            &users,
            &UserFilter::default(),
            Page::new(0, 100).expect("page"),
        )
        .await;
        assert_eq!(
            u64::try_from(page.len()).expect("small"),
            total,
            "the page is every row"
        );
        total
    };
    assert_eq!(total(Arc::clone(&users)).await, 8, "{created:?}");
    for user in &created[..3] {
        users.delete(user.id(), None).await.expect("deleted");
    }
    assert_eq!(total(Arc::clone(&users)).await, 5);
}

/// A page reads its own narrow set of columns by position; each user on it must be what
/// the whole-row read says, in every TOTP state (on, pending, off) and flag.
async fn a_page_shows_each_user_as_the_whole_row_reads_it(backend: Backend) {
    let Some((_db, users)) = repository(backend).await else {
        return;
    };
    let sealed = || vec![7_u8; 40];
    for (i, totp, superuser) in [
        (
            0,
            Totp::On {
                sealed_secret: sealed(),
            },
            true,
        ),
        (
            1,
            Totp::Pending {
                sealed_secret: sealed(),
            },
            false,
        ),
        (2, Totp::Off, false),
    ] {
        let user = users
            .insert(
                new_user(
                    &format!("Sum{i}@Example.com"),
                    &format!("Sum{i}"),
                    superuser,
                ),
                None,
            )
            .await
            .expect("inserted");
        let changes = UserChanges::default().totp(totp, Vec::new()).active(i != 2);
        users
            .update(user.id(), None, changes, now())
            .await
            .expect("updated");
    }
    let (page, _) = page_of(
        &users,
        &UserFilter::default(),
        Page::new(0, 100).expect("page"),
    )
    .await;
    assert_eq!(page.len(), 3);
    for shown in &page {
        let whole = users
            .find_by_id(shown.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(*shown, whole.summary().to_owned());
    }
    let on: Vec<_> = page.iter().map(|u| u.mfa_enabled).collect();
    assert_eq!(on, [true, false, false], "only Totp::On is a second step");
}

shelter_test_support::on_both_backends!(
    a_page_shows_each_user_as_the_whole_row_reads_it,
    filters_search_email_and_username_ignoring_case_and_count_what_they_show,
    the_total_follows_concurrent_inserts_refusals_and_deletions,
    stores_and_finds_users_ignoring_case,
    duplicates_are_refused_by_the_database,
    concurrent_signups_with_one_email_create_exactly_one_user,
    updates_bump_the_revision_and_check_it,
    the_last_active_superuser_stays,
    two_superusers_demoting_each_other_at_once_leave_one,
    lists_pages_in_id_order_with_the_total,
);
