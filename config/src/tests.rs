use super::*;

/// S2: no secret in any `Debug` of a config, nor in an error message.
#[test]
fn secrets_never_format() {
    let secret = "s3cr3t-VALUE-never-printed";
    for text in [
        format!("[persistence]\ntype = \"s3\"\nbucket = \"b\"\naccess_key_id = \"id\"\nsecret_access_key = \"{secret}\"\n"),
        format!("[persistence]\ntype = \"azure\"\naccount_name = \"a\"\ncontainer_name = \"c\"\naccount_key = \"{secret}\"\n"),
    ] {
        let config = Config::parse(&text).unwrap();
        for shown in [format!("{config:?}"), format!("{:?}", config.persistence)] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
    let unclosed = format!("{secret}${{OPEN");
    let err = expand_env(&unclosed, "s3", "secret_access_key").unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
    let text = format!(
        "[persistence]\ntype = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"{unclosed}\"\n"
    );
    let err = Config::parse(&text).unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
}

#[test]
fn the_seeds_flat_sections_parse() {
    let config = Config::parse(
        r#"
        [persistence]
        type = "lsm_tree"
        data_dir = "./orbit_lsm_data"
        memtable_size_limit = 67108864
        max_memtables = 10
        bloom_filter_fp_rate = 0.01
        enable_compaction = true
        compaction_threshold = 4

        [actor_management]
        lease_duration_seconds = 180
        snapshot_interval_seconds = 60
        idle_timeout_seconds = 1800
        max_concurrent_activations = 10000
        "#,
    )
    .unwrap();
    let PersistenceConfig::LsmTree(lsm) = &config.persistence else {
        panic!("{config:?}")
    };
    assert_eq!(lsm.memtable_size_limit, 64 << 20);
    assert_eq!(config.actor_management.lease_duration_seconds, 180);
    assert_eq!(config.durability, Durability::Sync);

    let btree = Config::parse(
        "[persistence]\ntype = \"cow_btree\"\ndata_dir = \"d\"\nmax_keys_per_node = 256\nwal_buffer_size = 1048576\nenable_compression = true\nwal_sync_interval = 5\ndurability = \"group\"\n",
    )
    .unwrap();
    assert_eq!(btree.durability, Durability::Group);
    assert_eq!(btree.persistence.data_dir(), Some(Path::new("d")));
}

#[test]
fn nested_sections_are_chosen_by_the_server_selector() {
    let text = r#"
        [server]
        persistence_backend = "memory"
        [persistence.memory]
        type = "memory"
        max_entries = 100000
        enable_disk_backup = true
        backup_path = "/data/backup.lz4"
        sync_interval = 300
        compression = "lz4"
        [persistence.rocksdb]
        type = "rocksdb"
        data_dir = "./orbit_rocksdb"
        create_if_missing = true
        enable_statistics = true
        compression_type = "snappy"
        block_cache_size = 268435456
    "#;
    let config = Config::parse(text).unwrap();
    let PersistenceConfig::Memory(memory) = config.persistence else {
        panic!()
    };
    assert_eq!(
        memory.backup_path.as_deref(),
        Some(Path::new("/data/backup.lz4"))
    );
    let without_selector = text.replace("persistence_backend = \"memory\"", "");
    assert!(matches!(
        Config::parse(&without_selector),
        Err(ConfigError::AmbiguousBackend(_))
    ));
}

#[test]
fn unknown_types_keys_and_bad_values_are_errors_naming_them() {
    assert_eq!(
        Config::parse("[persistence]\ntype = \"sqlite\"\n"),
        Err(ConfigError::UnknownType("sqlite".into()))
    );
    let err =
        Config::parse("[persistence]\ntype = \"lsm_tree\"\nmemtable_limit = 5\n").unwrap_err();
    assert!(err.to_string().contains("memtable_limit"), "{err}");
    let err = Config::parse("[persistence]\ntype = \"lsm_tree\"\nbloom_filter_fp_rate = 1.5\n")
        .unwrap_err();
    assert!(err.to_string().contains("bloom_filter_fp_rate"), "{err}");
    let err =
        Config::parse("[persistence]\ntype = \"memory\"\ncompression = \"gzip\"\n").unwrap_err();
    assert!(err.to_string().contains("gzip"), "{err}");
    let err = Config::parse("[persistence]\ntype = \"memory\"\ndurability = \"eventually\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("eventually"), "{err}");
    assert_eq!(
        Config::parse("[server]\n"),
        Err(ConfigError::MissingPersistence)
    );
    assert!(matches!(
        Config::parse("[persistence\n"),
        Err(ConfigError::Syntax(_))
    ));
    let err =
        Config::parse("[persistence]\ntype = \"lsm_tree\"\n[actor_management]\nlease_secs = 3\n")
            .unwrap_err();
    assert!(err.to_string().contains("lease_secs"), "{err}");
}

#[test]
fn s3_credentials_expand_from_the_environment_and_unset_variables_fail() {
    // A variable name only this test uses, so parallel tests cannot race on it.
    std::env::set_var("LEASEHOLD_CONFIG_TEST_KEY", "AKIA123");
    let config = Config::parse(
        "[persistence.s3]\ntype = \"s3\"\nbucket = \"b\"\naccess_key_id = \"${LEASEHOLD_CONFIG_TEST_KEY}\"\nsecret_access_key = \"x${LEASEHOLD_CONFIG_TEST_UNSET}\"\n",
    );
    assert_eq!(
        config,
        Err(ConfigError::MissingEnv {
            section: "persistence.s3".into(),
            key: "secret_access_key".into(),
            var: "LEASEHOLD_CONFIG_TEST_UNSET".into()
        })
    );
    assert_eq!(
        expand_env("id-${LEASEHOLD_CONFIG_TEST_KEY}-", "s", "k").unwrap(),
        "id-AKIA123-"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    let err = Config::parse("[persistence]\ntype = \"lsm_tree\"\nmemtable_size_limit = \"big\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("memtable_size_limit"), "{err}");
}

#[test]
fn rocksdbs_blob_settings_parse_and_bad_ones_are_refused() {
    let config = Config::parse(
        "[persistence]\ntype = \"rocksdb\"\nenable_blob_files = true\nmin_blob_size = 1024\n",
    )
    .unwrap();
    let PersistenceConfig::RocksDb(rocksdb) = config.persistence else {
        panic!()
    };
    assert!(rocksdb.enable_blob_files && rocksdb.enable_blob_gc);
    assert_eq!(rocksdb.min_blob_size, 1024);
    for bad in ["blob_gc_age_cutoff = 2.0", "blob_file_size = 10"] {
        let err = Config::parse(&format!("[persistence]\ntype = \"rocksdb\"\n{bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad.split(' ').next().unwrap()), "{err}");
    }
}

#[test]
fn postgres_section_parses_expands_its_password_and_never_prints_it() {
    std::env::set_var(
        "LEASEHOLD_CONFIG_TEST_PG_PASSWORD",
        "pg-S3CRET-never-printed",
    );
    let config = Config::parse(
        "[persistence.postgres]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 5433\nuser = \"u\"\npassword = \"${LEASEHOLD_CONFIG_TEST_PG_PASSWORD}\"\ndbname = \"d\"\nsslmode = \"require\"\npool_size = 4\ndurability = \"buffered\"\n",
    )
    .unwrap();
    assert_eq!(config.durability, Durability::Buffered);
    let PersistenceConfig::Postgres(postgres) = &config.persistence else {
        panic!("{config:?}")
    };
    assert_eq!(
        postgres.password.as_ref().map(Secret::expose),
        Some("pg-S3CRET-never-printed")
    );
    assert_eq!(
        (postgres.port, postgres.pool_size, postgres.sslmode),
        (Some(5433), 4, Some(SslMode::Require))
    );
    assert_eq!(postgres.schema, "leasehold");
    assert!(!format!("{config:?}").contains("S3CRET"));
}

#[test]
fn postgres_section_refuses_what_cannot_work() {
    let base = "[persistence]\ntype = \"postgres\"\n";
    for (extra, names) in [
        ("host = \"h\"\n", "user"),
        ("url = \"postgresql://u@h/d\"\nhost = \"h\"\n", "host"),
        ("url = \"mysql://u:pw-XYZ@h/d\"\n", "postgresql://"),
        ("host = \"h\"\nuser = \"u\"\npool_size = 0\n", "pool_size"),
        (
            "host = \"h\"\nuser = \"u\"\nschema = \"Bad-Name\"\n",
            "schema",
        ),
        (
            "host = \"h\"\nuser = \"u\"\nstatement_timeout_ms = 0\n",
            "statement_timeout_ms",
        ),
        (
            "host = \"h\"\nuser = \"u\"\nsslmode = \"allow\"\n",
            "sslmode",
        ),
        ("host = \"h\"\nuser = \"u\"\npasword = \"x\"\n", "pasword"),
    ] {
        let err = Config::parse(&format!("{base}{extra}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(names), "{extra}: {err}");
        assert!(!err.contains("pw-XYZ"), "{err}");
    }
}
