//! Integration tests of the lease stores: [`cvmfleet_lease::EtcdStore`] against a real etcd.

mod etcd;
