//! Catalogues (departments, topics, statuses, priorities, staff) and customers.

use super::auth::authenticate;
use super::body::read_body;
use super::input::{self, finish, parse_json};
use super::problem::Problem;
use super::views::{DepartmentView, PriorityView, StaffView, StatusView, TopicView, UserView};
use crate::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use helpline_core::FieldError;
use helpline_core::apikey::Scope;
use helpline_core::ids::UserId;
use helpline_core::service::users::create_user_work;
use helpline_core::user::{CustomerContact, check_name, check_text};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::{IntoParams, ToSchema};

macro_rules! catalogue {
    ($fn:ident, $path:literal, $tag:literal, $list:ident, $field:ident, $view:ty, $read:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $list {
            #[doc = "Every entry, by id."]
            pub $field: Vec<$view>,
        }

        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = $tag,
                            responses((status = 200, description = "The catalogue", body = $list)),
                            security(("bearer" = [])))]
        pub async fn $fn(
            State(state): State<AppState>,
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            headers: HeaderMap,
        ) -> Result<Json<$list>, Problem> {
            authenticate(&state, peer, &headers, Scope::TicketsRead).await?;
            let items = state.store.reader().await?.$read().await?;
            Ok(Json($list {
                $field: items.iter().map(<$view>::from).collect(),
            }))
        }
    };
}

catalogue!(
    departments,
    "/api/v1/departments",
    "catalogues",
    DepartmentList,
    departments,
    DepartmentView,
    departments,
    "Departments."
);
catalogue!(
    topics,
    "/api/v1/topics",
    "catalogues",
    TopicList,
    topics,
    TopicView,
    topics,
    "Help topics."
);
catalogue!(
    statuses,
    "/api/v1/statuses",
    "catalogues",
    StatusList,
    statuses,
    StatusView,
    statuses,
    "Ticket statuses."
);
catalogue!(
    priorities,
    "/api/v1/priorities",
    "catalogues",
    PriorityList,
    priorities,
    PriorityView,
    priorities,
    "Priorities."
);
catalogue!(
    staff,
    "/api/v1/staff",
    "catalogues",
    StaffList,
    staff,
    StaffView,
    staff,
    "Staff members."
);

/// `GET /api/v1/users` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// By id.
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Lists customers by id.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListParams),
    responses((status = 200, description = "A page of customers", body = UserList),
        (status = 400, description = "Invalid query", body = super::problem::ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<UserList>, Problem> {
    authenticate(&state, peer, &headers, Scope::UsersRead).await?;
    let params: UserListParams = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| Problem::field("query", e.to_string()))?;
    let limit = super::paging::limit(params.limit)?;
    let after = super::paging::after(params.cursor.as_deref(), 'u')?.map(UserId);
    let users = state.store.reader().await?.users(after, limit + 1).await?;
    let (users, next_cursor) = super::paging::page(users, limit, 'u', |u| u.id.0);
    Ok(Json(UserList {
        users: users.iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

/// Reads one customer.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "The customer", body = UserView),
        (status = 404, description = "No such customer", body = super::problem::ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Result<Json<UserView>, Problem> {
    authenticate(&state, peer, &headers, Scope::UsersRead).await?;
    let id: i64 = raw_id
        .parse()
        .map_err(|_| Problem::not_found(format!("customer {raw_id}")))?;
    let user = state
        .store
        .reader()
        .await?
        .user(UserId(id))
        .await?
        .ok_or_else(|| Problem::not_found(format!("customer {id}")))?;
    Ok(Json(UserView::from(&user)))
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Address (required, unique).
    pub email: Option<String>,
    /// Name; default the address's local part.
    pub name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Internal notes.
    pub notes: Option<String>,
}

/// Creates a customer.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, description = "Created", body = UserView),
        (status = 400, description = "Invalid input", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address belongs to a customer already", body = super::problem::ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn post_user(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::UsersWrite).await?;
    let body = read_body(body, &state).await?;
    let request: CreateUserRequest = parse_json(&body)?;
    let mut problems = Vec::new();
    let email = match request.email.as_deref() {
        Some(raw) => input::email("email", raw, &mut problems),
        None => {
            problems.push(FieldError::new("email", "is required"));
            None
        }
    };
    let mut check = |field: &str, outcome: Result<Option<String>, String>| {
        outcome
            .map_err(|e| problems.push(FieldError::new(field, e)))
            .unwrap_or_default()
    };
    let name = check("name", check_name(request.name.as_deref()));
    let phone = check("phone", check_text(request.phone.as_deref(), 64));
    let notes = check("notes", check_text(request.notes.as_deref(), 10_000));
    let contact = email.map(|email| CustomerContact {
        email,
        name,
        phone,
        notes,
    });
    let contact = finish(problems, contact)?;
    let key = super::idempotency_key(&headers, &caller, "POST", "/api/v1/users", &body)?;
    let work = super::then(create_user_work(contact, caller.actor()), |_, user| {
        Box::pin(async move { Ok(UserView::from(&user)) })
    });
    super::write_json(&state, key, StatusCode::CREATED, work).await
}
