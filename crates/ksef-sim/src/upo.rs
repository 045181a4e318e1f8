//! UPO v4-3 documents (invoice UPOs and session UPO pages), XAdES-signed with the simulator's
//! UPO key.

use ksef_model::auth_request::ContextIdentifier;
use ksef_model::ids::{KsefNumber, Nip, ReferenceNumber, Sha256Base64};
use ksef_model::upo::{
    MAX_DOCUMENTS_PER_UPO, SendingMode, Upo, UpoAuthProof, UpoAuthentication, UpoDocument, UpoPage,
};

use crate::server::Inner;
use crate::state::{Ident, Invoice, Session};

fn document(inv: &Invoice) -> Option<UpoDocument> {
    Some(UpoDocument {
        seller_nip: inv.seller_nip.as_deref()?.parse::<Nip>().ok()?,
        ksef_number: inv.ksef_number.as_deref()?.parse::<KsefNumber>().ok()?,
        invoice_number: inv.invoice_number.clone()?,
        issue_date: inv.issue_date?,
        sent_at: inv.received,
        ksef_number_assigned_at: inv.acquisition?,
        invoice_hash: inv.invoice_hash.parse::<Sha256Base64>().ok()?,
        sending_mode: if inv.offline {
            SendingMode::Offline
        } else {
            SendingMode::Online
        },
    })
}

fn skeleton(
    inner: &Inner,
    session_ref: &str,
    context: &Ident,
    document_hash: &str,
    form_system_code: &str,
    logical_name: String,
) -> Option<Upo> {
    Some(Upo {
        schema_version: None,
        receiving_entity: inner.config.receiving_entity.clone(),
        session_reference_number: session_ref.parse::<ReferenceNumber>().ok()?,
        authentication: UpoAuthentication {
            context: ContextIdentifier::from_parts(&context.0, &context.1).ok()?,
            proof: match document_hash.strip_prefix("token:") {
                Some(r) => UpoAuthProof::KsefTokenReference(r.parse::<ReferenceNumber>().ok()?),
                None => UpoAuthProof::AuthDocumentHash(document_hash.parse::<Sha256Base64>().ok()?),
            },
        },
        page: None,
        logical_structure_name: logical_name,
        form_system_code: form_system_code.to_owned(),
        documents: Vec::new(),
        has_signature: false,
    })
}

/// The UPO's authentication proof of an auth operation: its document hash, or `token:{ref}` for
/// KSeF-token authentication.
pub(crate) fn proof_of(a: &crate::state::AuthOp) -> String {
    match &a.token_ref {
        Some(r) => format!("token:{r}"),
        None => a.document_hash.clone(),
    }
}

fn sign(inner: &Inner, upo: &Upo) -> Option<Vec<u8>> {
    let xml = upo.to_xml().ok()?;
    ksef_crypto::xades::sign(&xml, &inner.keys.upo_signer).ok()
}

/// The signed UPO of one accepted invoice.
pub(crate) fn invoice_upo(
    inner: &Inner,
    session: &Session,
    document_hash: &str,
    inv: &Invoice,
) -> Option<Vec<u8>> {
    let mut upo = skeleton(
        inner,
        &session.reference,
        &session.context,
        document_hash,
        session.form.system_code(),
        session.form.logical_structure_name(),
    )?;
    upo.documents.push(document(inv)?);
    sign(inner, &upo)
}

/// The signed pages of a session UPO (at most 10 000 documents each).
pub(crate) fn session_upo_pages(
    inner: &Inner,
    session: &Session,
    document_hash: &str,
) -> Option<Vec<Vec<u8>>> {
    let docs: Vec<UpoDocument> = session.invoices.iter().filter_map(document).collect();
    let total = docs.len() as u32;
    let chunks: Vec<&[UpoDocument]> = docs.chunks(MAX_DOCUMENTS_PER_UPO).collect();
    let page_count = chunks.len() as u32;
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut upo = skeleton(
            inner,
            &session.reference,
            &session.context,
            document_hash,
            session.form.system_code(),
            session.form.logical_structure_name(),
        )?;
        let from = (i * MAX_DOCUMENTS_PER_UPO) as u32 + 1;
        upo.page = Some(UpoPage {
            page: i as u32 + 1,
            page_count,
            documents_from: from,
            documents_to: from + chunk.len() as u32 - 1,
            total_documents: total,
        });
        upo.documents = chunk.to_vec();
        out.push(sign(inner, &upo)?);
    }
    Some(out)
}
